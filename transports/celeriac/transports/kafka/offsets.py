"""Per-message acks mapped onto Kafka offsets: what a consumer may commit, partition by partition.

A partition's committed offset never passes a record that was handed out and not settled, so a
crash redelivers every unsettled record (and, at worst, settled ones above the lowest unsettled).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kafka.structs import TopicPartition

__all__ = ["Ledger", "PartitionLedger"]


@dataclass(slots=True)
class PartitionLedger:
    """The records of one partition handed out and not yet settled."""

    #: Changes whenever the partition is lost, so settling an older delivery does nothing.
    epoch: int
    #: The offset after the last record handed out; None before the first.
    position: int | None = None
    outstanding: set[int] = field(default_factory=set)
    #: (offset, handed-out position) as last committed.
    committed: tuple[int, int] | None = None
    #: How far the group had handed records out when this member took the partition over.
    handed_before: int | None = None

    def hand_out(self, offset: int) -> None:
        self.outstanding.add(offset)
        if self.position is None or offset >= self.position:
            self.position = offset + 1

    def hand_out_many(self, offsets: list[int]) -> None:
        """:meth:`hand_out` for a batch of one poll (ascending, as a partition's records are)."""
        if offsets:
            self.outstanding.update(offsets)
            last = offsets[-1] + 1
            if self.position is None or last > self.position:
                self.position = last

    def safe_offset(self) -> int | None:
        """The offset to commit: the lowest unsettled record, or past everything handed out."""
        if self.outstanding:
            return min(self.outstanding)
        return self.position

    def pending_commit(self, *, releasing: bool = False) -> tuple[int, int] | None:
        """(offset, handed-out position) to commit, or None when the broker already has it.

        ``releasing``: the unsettled records go back to the queue, so they count as ready."""
        offset = self.safe_offset()
        if offset is None or self.position is None:
            return None
        wanted = (offset, offset if releasing else self.position)
        return None if wanted == self.committed else wanted


class Ledger:
    """Every partition a consumer reads, with an epoch per ownership."""

    def __init__(self) -> None:
        self.partitions: dict[TopicPartition, PartitionLedger] = {}
        self._epochs = 0

    def get(self, tp: TopicPartition) -> PartitionLedger:
        ledger = self.partitions.get(tp)
        if ledger is None:
            self._epochs += 1
            ledger = self.partitions[tp] = PartitionLedger(self._epochs)
        return ledger

    def settle(self, tp: TopicPartition, offset: int, epoch: int) -> bool:
        """Mark a record settled; False when its partition was lost since it was handed out."""
        ledger = self.partitions.get(tp)
        if ledger is None or ledger.epoch != epoch:
            return False
        ledger.outstanding.discard(offset)
        return True

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget partitions this consumer no longer owns: their deliveries settle to nothing."""
        for tp in partitions:
            self.partitions.pop(tp, None)

    def held(self) -> list[TopicPartition]:
        """Partitions with unsettled records or progress the broker has not recorded yet."""
        return [
            tp
            for tp, ledger in self.partitions.items()
            if ledger.outstanding or ledger.pending_commit() is not None
        ]
