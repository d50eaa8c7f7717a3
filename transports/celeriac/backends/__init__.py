"""Result backends: where task results are stored, found by URL scheme like transports."""

from .base import ResultBackend, pending
from .registry import open_backend

__all__ = ["ResultBackend", "open_backend", "pending"]
