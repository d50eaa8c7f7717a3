"""``memory://[name]``: an in-process broker, the test double of every other transport."""

from .transport import MemoryTransport

__all__ = ["MemoryTransport"]
