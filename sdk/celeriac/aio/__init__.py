"""The asyncio client API: ``await add.adelay(2, 3)``, ``await result``, ``await
app.asend_task(...)``, ``async for`` over a group's results, ``app.acontrol``.

No call here blocks the event loop: results are awaited with the backend's native asyncio
client where it has one (Redis) and a watcher thread otherwise; publishing and remote control
run on a dedicated I/O thread per process whose futures are bridged to the loop.
"""

from .bridge import in_io_thread, in_thread

__all__ = ["in_io_thread", "in_thread"]
