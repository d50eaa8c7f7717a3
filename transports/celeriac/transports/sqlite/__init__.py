"""``sqlite:///path.db``: a durable broker in one file, shared by the processes of a machine."""

from .transport import SQLiteTransport

__all__ = ["SQLiteTransport"]
