"""Bounds on what a decoder will accept, so hostile input cannot exhaust memory or stack."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Decoder limits; the defaults are safe for a worker that reads from a shared broker."""

    #: Largest serialized body or envelope accepted, in bytes (after decompression too).
    max_message_bytes: int = 64 * 1024 * 1024
    #: Deepest nesting of lists and maps in a decoded body.
    max_depth: int = 100
    #: Most positional plus keyword arguments one task call may carry.
    max_arguments: int = 10_000
    #: Most values (list items, map entries) one decoded body may hold, however small: a body of
    #: many tiny items takes far more memory decoded than its size in bytes.
    max_items: int = 1_000_000

    def __post_init__(self) -> None:
        if self.max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")
        if self.max_depth <= 0:
            raise ValueError("max_depth must be positive")
        if self.max_arguments <= 0:
            raise ValueError("max_arguments must be positive")
        if self.max_items <= 0:
            raise ValueError("max_items must be positive")


DEFAULT_LIMITS = Limits()
