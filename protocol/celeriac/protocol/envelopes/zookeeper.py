"""The ZooKeeper envelope (SPEC.md §5.6): a queue node's data is the JSON envelope's bytes."""

from __future__ import annotations

from .json_envelope import EnvelopeInfo, pack, pack_wire, unpack, unpack_wire

__all__ = ["EnvelopeInfo", "pack", "pack_wire", "unpack", "unpack_wire"]
