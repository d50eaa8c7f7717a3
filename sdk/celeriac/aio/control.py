"""Remote control for asyncio: ``await app.acontrol.ping()`` and ``inspect()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .bridge import in_thread

if TYPE_CHECKING:
    from ..control import Control, Inspect

__all__ = ["AsyncControl", "AsyncInspect"]


class AsyncControl:
    """``app.control``'s commands as coroutines; replies are gathered on a pool thread."""

    def __init__(self, control: Control) -> None:
        self.control = control

    async def call(self, method: str, arguments: dict[str, Any] | None = None,
                   **options: Any) -> dict[str, Any]:  # fmt: skip
        """Send a command and gather the replies for ``timeout`` seconds: ``{node: reply}``."""
        return await in_thread(self.control.call, method, arguments, **options)

    async def ping(
        self, destination: list[str] | None = None, timeout: float = 1.0
    ) -> list[dict[str, Any]]:
        """``[{node: {"ok": "pong"}}, ...]``, as ``control.ping``."""
        return await in_thread(self.control.ping, destination, timeout)

    async def broadcast(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        destination: list[str] | None = None,
    ) -> None:
        """Send a command without waiting for replies."""
        await in_thread(self.control.broadcast, method, arguments, destination)

    async def revoke(self, task_id: str | list[str], **options: Any) -> dict[str, Any] | None:
        """Ask every worker not to run (or, with ``terminate``, to stop) these tasks."""
        return await in_thread(self.control.revoke, task_id, **options)

    def inspect(self, destination: list[str] | None = None, timeout: float = 1.0,
                **options: Any) -> AsyncInspect:  # fmt: skip
        """Ask workers what they do: ``await app.acontrol.inspect().active()``."""
        return AsyncInspect(self.control.inspect(destination, timeout, **options))


class AsyncInspect:
    """``control.inspect()``'s queries as coroutines."""

    def __init__(self, inspect: Inspect) -> None:
        self.inspect = inspect

    async def _ask(self, query: str, *args: Any) -> dict[str, Any]:
        result: dict[str, Any] = await in_thread(getattr(self.inspect, query), *args)
        return result

    async def ping(self) -> dict[str, Any]:
        """Each worker's pong."""
        return await self._ask("ping")

    async def stats(self) -> dict[str, Any]:
        """Each worker's statistics."""
        return await self._ask("stats")

    async def active(self) -> dict[str, Any]:
        """The tasks each worker is running."""
        return await self._ask("active")

    async def reserved(self) -> dict[str, Any]:
        """The tasks each worker holds but has not started."""
        return await self._ask("reserved")

    async def scheduled(self) -> dict[str, Any]:
        """The tasks each worker holds for a later ETA."""
        return await self._ask("scheduled")

    async def registered(self) -> dict[str, Any]:
        """The task names each worker knows."""
        return await self._ask("registered")

    async def active_queues(self) -> dict[str, Any]:
        """The queues each worker consumes."""
        return await self._ask("active_queues")

    async def revoked(self) -> dict[str, Any]:
        """The task ids each worker has revoked."""
        return await self._ask("revoked")

    async def query_task(self, *ids: str) -> dict[str, Any]:
        """What each worker knows of these task ids."""
        return await self._ask("query_task", *ids)
