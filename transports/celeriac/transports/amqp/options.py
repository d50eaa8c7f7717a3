"""Options of the RabbitMQ transport: keyword arguments (Celery's ``broker_transport_options``
and broker settings) and URL query parameters, each applied or refused; none is dropped."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import TransportError
from ..failover import FAILOVER_STRATEGIES

__all__ = ["CLIENT_WINDOW", "QUEUE_TYPES", "WINDOW_BYTES", "AmqpOptions", "parse_options"]

log = logging.getLogger("celeriac.transports.amqp")

#: Queue types, as Celery 5.5's ``task_default_queue_type`` names them.
QUEUE_TYPES = ("classic", "quorum")
#: Kombu/py-amqp options with no meaning here, accepted with one warning each: publishes are
#: always confirmed, and retried on any node for ``retry_seconds``.
_KOMBU_ONLY = frozenset((
    "max_retries", "interval_start", "interval_step", "interval_max",
    "client_properties", "login_method", "visibility_timeout", "polling_interval",
))  # fmt: skip
#: The publish window of the SDK's clients when none is given (``Transport.client_publish_window``)
#: and of Kombu's ``confirm_publish=False``: confirms are read in bulk, 1,000 messages at most
#: waiting for theirs (and :data:`WINDOW_BYTES` of bodies).
CLIENT_WINDOW = 1000
#: Bytes of message bodies a window holds at most (large messages wait for confirms sooner).
WINDOW_BYTES = 16 * 1024 * 1024
#: Options a URL's query string may carry (Kombu reads these from the URL too).
_URL_OPTIONS = ("heartbeat", "connect_timeout", "failover_strategy")
_warned: set[str] = set()


@dataclass(frozen=True, slots=True)
class AmqpOptions:
    """What a RabbitMQ transport can be told (Celery's setting in brackets)."""

    #: Messages a publishing thread may leave unconfirmed; 0: each publish waits (Transport.flush).
    #: Kombu's ``confirm_publish=True`` (wait for each confirm) is ``publish_window=0``.
    publish_window: int = 0
    #: With a window, let the kernel hold a publish's frames while earlier ones are not yet
    #: acknowledged by TCP, to go out together (Nagle; ``False``: each written at once).
    coalesce_writes: bool = True
    #: ``classic`` or ``quorum`` for task, delay and dead-letter queues [task_default_queue_type].
    queue_type: str = "classic"
    #: Deliveries of one message before a quorum queue drops or dead-letters it (x-delivery-limit).
    delivery_limit: int | None = None
    #: Seconds between AMQP heartbeats; 0 turns them off [broker_heartbeat].
    heartbeat: float = 30.0
    #: Seconds to wait for a node to accept the connection [broker_connection_timeout].
    connect_timeout: float = 4.0
    #: Order the nodes of a URL list are tried in [broker_failover_strategy].
    failover_strategy: str = "round-robin"
    #: Seconds an operation keeps trying (every node, backing off) before it gives up.
    retry_seconds: float = 30.0
    #: Countdowns through Celery 5.5's ``celery_delayed_*`` topology (whole seconds) instead of
    #: per-delay TTL queues; None: on with quorum queues, as Celery does.
    native_delayed_delivery: bool | None = None
    #: Type of the exchange named after each task queue: ``direct`` (Celery's default) or
    #: ``topic`` (what Celery needs to use native delayed delivery on a queue).
    exchange_type: str = "direct"

    @property
    def native_delay(self) -> bool:
        """Whether countdowns go through the ``celery_delayed_*`` topology."""
        if self.native_delayed_delivery is None:
            return self.queue_type == "quorum"
        return self.native_delayed_delivery


_NUMBERS = {"publish_window": int, "delivery_limit": int, "heartbeat": float}
_NUMBERS |= {"connect_timeout": float, "retry_seconds": float}
_KNOWN = (*_NUMBERS, "queue_type", "quorum", "failover_strategy", "native_delayed_delivery")
_KNOWN += ("exchange_type", "confirm_publish", "coalesce_writes")


def _number(name: str, value: Any, kind: type) -> Any:
    if value is None and name == "delivery_limit":
        return None
    if isinstance(value, bool):
        raise TransportError(f"RabbitMQ option {name}={value!r}: expected a number")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise TransportError(f"RabbitMQ option {name}={value!r}: expected a number") from None
    if number < 0 or (name in ("delivery_limit", "retry_seconds") and number <= 0):
        raise TransportError(f"RabbitMQ option {name}={value!r}: must be more than 0")
    return number


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no"):
        return value.lower() in ("1", "true", "yes", "on")
    raise TransportError(f"RabbitMQ option {name}={value!r}: expected true or false")


def parse_options(options: Mapping[str, Any], query: Mapping[str, str]) -> AmqpOptions:
    """Options from keyword arguments and a URL's query (the URL wins, as in Kombu)."""
    for name in query:
        if name not in _URL_OPTIONS:
            raise TransportError(
                f"unknown RabbitMQ URL parameter {name!r}; valid: {', '.join(_URL_OPTIONS)}, "
                "and in amqps:// URLs ca_certs, certfile, keyfile, cert_reqs, server_hostname"
            )
    values: dict[str, Any] = {}
    for name, value in {**options, **query}.items():
        if name in _KOMBU_ONLY:
            if name not in _warned:
                _warned.add(name)
                log.warning(
                    "RabbitMQ option %s is Kombu's and has no effect here: publishes are always "
                    "confirmed and retried on every node for retry_seconds",
                    name,
                )
        elif name in _NUMBERS:
            values[name] = _number(name, value, _NUMBERS[name])
        elif name == "confirm_publish":
            # Kombu's: True waits for each publish's confirm, which publish_window=0 does;
            # False (Kombu: no confirms at all) is the clients' window: confirms read in bulk.
            values["confirm_each"] = _flag(name, value)
        elif name == "native_delayed_delivery":
            values[name] = None if value is None else _flag(name, value)
        elif name == "coalesce_writes":
            values[name] = _flag(name, value)
        elif name == "exchange_type":
            if value not in ("direct", "topic"):
                raise TransportError(
                    f"RabbitMQ option exchange_type={value!r}: use 'direct' or 'topic'"
                )
            values[name] = value
        elif name == "quorum":
            if _flag(name, value):
                values.setdefault("queue_type", "quorum")
        elif name == "queue_type":
            if value not in QUEUE_TYPES:
                raise TransportError(
                    f"RabbitMQ option queue_type={value!r}: use one of {', '.join(QUEUE_TYPES)}"
                )
            values[name] = value
        elif name == "failover_strategy":
            if value not in FAILOVER_STRATEGIES:
                raise TransportError(
                    f"RabbitMQ option failover_strategy={value!r}: use one of "
                    f"{', '.join(FAILOVER_STRATEGIES)}"
                )
            values[name] = value
        else:
            close = difflib.get_close_matches(name, [*_KNOWN, *_KOMBU_ONLY], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TransportError(
                f"unknown RabbitMQ transport option {name!r}{hint} (valid: {', '.join(_KNOWN)})"
            )
    confirm_each = values.pop("confirm_each", None)
    if confirm_each and values.get("publish_window", 0) > 0:
        raise TransportError(
            f"RabbitMQ options confirm_publish=True and publish_window={values['publish_window']} "
            "disagree: confirm_publish=True waits for each message's confirm, which is "
            "publish_window=0; give one of them"
        )
    if confirm_each is not None:
        values.setdefault("publish_window", 0 if confirm_each else CLIENT_WINDOW)
    if "delivery_limit" in values and values.get("queue_type") != "quorum":
        raise TransportError("RabbitMQ option delivery_limit needs queue_type='quorum'")
    return AmqpOptions(**values)
