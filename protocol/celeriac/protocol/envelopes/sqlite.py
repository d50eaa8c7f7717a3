"""The SQLite envelope (SPEC.md §5.7): a row's ``payload`` column holds the JSON envelope."""

from __future__ import annotations

from .json_envelope import EnvelopeInfo, pack, pack_wire, unpack, unpack_wire

__all__ = ["EnvelopeInfo", "pack", "pack_wire", "unpack", "unpack_wire"]
