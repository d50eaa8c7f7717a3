"""Celery 5.5's native delayed delivery on RabbitMQ, declared and used the same way.

Twenty-eight topic exchanges and queues ``celery_delayed_27`` .. ``celery_delayed_0``: queue
``celery_delayed_N`` holds a message for 2^N seconds, then dead-letters it to the next level; a
message's routing key spells its delay in 28 binary digits (``0.0.….1.0.<routing key>``), so
each level either holds it (digit 1) or passes it straight down (digit 0). Level 0 hands it
to the topic exchange ``celery_delayed_delivery``, where each task queue is bound with
``#.<routing key>``. A Celery 5.5+ worker declares the same topology with the same
arguments, so Celery and Celeriac clients and workers on one quorum queue honour each
other's countdowns (to the second, never early).
"""

from __future__ import annotations

import math
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

__all__ = ["DELIVERY_EXCHANGE", "LEVELS", "MAX_DELAY_S", "declare_topology", "routing_key"]

LEVELS = 28
#: The longest delay the topology can spell (about 8.5 years).
MAX_DELAY_S = 2**LEVELS - 1
DELIVERY_EXCHANGE = "celery_delayed_delivery"
ENTRY_EXCHANGE = f"celery_delayed_{LEVELS - 1}"


def level_name(level: int) -> str:
    """The exchange and queue of one level."""
    return f"celery_delayed_{level}"


def routing_key(delay: float, key: str) -> str:
    """The routing key that delays a message to ``key`` by ``delay`` seconds, rounded up."""
    seconds = min(max(math.ceil(delay), 1), MAX_DELAY_S)
    return ".".join(f"{seconds:0{LEVELS}b}") + f".{key}"


def declare_topology(ch: BlockingChannel, queue_type: str) -> None:
    """Declare the levels and the delivery exchange, with Kombu's exact arguments."""
    holds = "1.#"
    for level in range(LEVELS - 1, -1, -1):
        name = level_name(level)
        ch.exchange_declare(name, "topic", durable=True)
        arguments: dict[str, Any] = {
            "x-queue-type": queue_type,
            "x-overflow": "reject-publish",
            "x-message-ttl": 2**level * 1000,
            "x-dead-letter-exchange": level_name(level - 1) if level else DELIVERY_EXCHANGE,
        }
        if queue_type == "quorum":
            arguments["x-dead-letter-strategy"] = "at-least-once"
        ch.queue_declare(name, durable=True, arguments=arguments)
        ch.queue_bind(name, name, routing_key=holds)
        holds = "*." + holds
    passes = "0.#"
    for level in range(LEVELS - 1, 0, -1):
        ch.exchange_bind(level_name(level - 1), level_name(level), routing_key=passes)
        passes = "*." + passes
    ch.exchange_declare(DELIVERY_EXCHANGE, "topic", durable=True)
    ch.exchange_bind(DELIVERY_EXCHANGE, level_name(0), routing_key=passes)


def bind_queue(ch: BlockingChannel, queue: str, key: str) -> None:
    """Let messages leaving the topology for ``key`` reach ``queue``."""
    ch.queue_bind(queue, DELIVERY_EXCHANGE, routing_key=key if key.startswith("#") else f"#.{key}")
