"""Random (version 4) UUID strings, as Celery gives task ids and Kombu delivery tags."""

from __future__ import annotations

import os

__all__ = ["new_id"]

# The variant nibble: its two high bits are 10 (RFC 4122), so 0-f maps onto 8, 9, a, b.
_VARIANT = "89ab" * 4


def new_id() -> str:
    """``str(uuid.uuid4())``, in under half its time (two of these go into every publish)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"
