"""Result backends: where task results are stored, found by URL scheme like transports."""

from .base import ChordJoin, ChordPart, ResultBackend, pending
from .registry import open_backend

__all__ = ["ChordJoin", "ChordPart", "ResultBackend", "open_backend", "pending"]
