"""A partition assignor that leaves partitions with its members' unsettled records where they are.

Kafka's own assignors may move a partition while a live consumer still holds records of it: the
new owner would then get those records again. Each member tells the group leader which
partitions it holds records of (subscription user data); the leader keeps those partitions with
their holder, spreads the rest evenly, and tells a holder which of its partitions belong
elsewhere once settled ("handover"). The holder stops reading those, and asks for a new
rebalance when it has settled their last record.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from kafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)
from kafka.structs import TopicPartition

__all__ = ["HoldingAssignor"]

log = logging.getLogger("celeriac.transports.kafka")


def _encode(partitions: list[TopicPartition]) -> bytes:
    return json.dumps(sorted([tp.topic, tp.partition] for tp in partitions)).encode()


def _decode(data: bytes | None) -> list[TopicPartition]:
    try:
        items = json.loads(data or b"[]")
        return [TopicPartition(str(t), int(p)) for t, p in items]
    except (ValueError, TypeError):
        return []  # a member running something else: treat it as holding nothing


class HoldingAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """Even spread, except that partitions stay with the member holding records of them."""

    name = "celeriac-holding"
    version = 0

    def __init__(
        self,
        held: Callable[[], list[TopicPartition]],
        on_handover: Callable[[set[TopicPartition]], None],
    ) -> None:
        self._held = held
        self._on_handover = on_handover

    def metadata(self, topics: set[str]) -> ConsumerProtocolSubscription:
        return ConsumerProtocolSubscription(self.version, sorted(topics), _encode(self._held()))

    def assign(self, cluster: Any, members: list[Any]) -> dict[str, ConsumerProtocolAssignment]:
        subscribed: dict[str, list[str]] = defaultdict(list)
        for member in sorted(members, key=lambda m: m.member_id):
            for topic in member.metadata.topics:
                subscribed[topic].append(member.member_id)
        target: dict[TopicPartition, str] = {}
        for topic, ids in subscribed.items():
            for i, partition in enumerate(sorted(cluster.partitions_for_topic(topic) or ())):
                target[TopicPartition(topic, partition)] = ids[i % len(ids)]
        owner = dict(target)
        handover: dict[str, list[TopicPartition]] = defaultdict(list)
        claimed: set[TopicPartition] = set()
        for member in sorted(members, key=lambda m: m.member_id):
            for tp in _decode(member.metadata.user_data):
                if tp in target and tp not in claimed and member.member_id in subscribed[tp.topic]:
                    claimed.add(tp)
                    owner[tp] = member.member_id
                    if target[tp] != member.member_id:
                        handover[member.member_id].append(tp)
        by_member: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for tp, member_id in owner.items():
            by_member[member_id][tp.topic].append(tp.partition)
        return {
            m.member_id: ConsumerProtocolAssignment(
                self.version,
                sorted((t, sorted(ps)) for t, ps in by_member[m.member_id].items()),
                _encode(handover[m.member_id]),
            )
            for m in members
        }

    def on_assignment(self, assignment: Any, generation: int) -> None:
        self._on_handover(set(_decode(assignment.user_data)))
