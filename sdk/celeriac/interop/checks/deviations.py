"""Known deviations of foreign clients (SPEC.md Appendix B), as data: a failed check that is one
turns into ``deviation`` for that client only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .catalog import DEVIATION, FAIL, Outcome


@dataclass(frozen=True)
class Deviation:
    """A known deviation of one client: a failed ``check`` at ``path`` (prefix) is expected."""

    client: str
    check: str
    path: str | None
    ref: str
    note: str


def _d(client: str, check: str, path: str | None, ref: str, note: str) -> Deviation:
    return Deviation(client, check, path, ref, note)


_NODE = "celery-node"
_RUST = "rusty-celery"
_V1NODE = "node-celery"
_NODE_MISSING = "celery-node writes only lang, task and id"
_RUST_HEADERS = "rusty-celery writes null or omits these headers (Appendix B.2 R1)"
#: SPEC.md Appendix B, as data. ``path`` None matches the check at any path.
DEVIATIONS: tuple[Deviation, ...] = (
    # -- celery-node 0.5.9 ------------------------------------------------------------------
    _d(_NODE, "headers.present", None, "B.1 N1", _NODE_MISSING),
    _d(_NODE, "headers.root_id", None, "B.1 N1", _NODE_MISSING),
    _d(
        _NODE,
        "properties.correlation_id",
        None,
        "B.1 N2",
        "on Redis celery-node writes correlationId/replyTo (camelCase) in properties",
    ),
    _d(
        _NODE,
        "properties.reply_to",
        None,
        "B.1 N2",
        "celery-node writes an empty reply_to (replyTo on Redis)",
    ),
    _d(_NODE, "envelope.priority", None, "B.1 N3", "celery-node writes no priority property"),
    _d(_NODE, "body.shape", "body[2]", "B.1 N4", "celery-node writes the embed as {}"),
    _d(
        _NODE,
        "body.arguments",
        None,
        "B.1 N5",
        "JavaScript numbers are doubles: integers beyond 2**53 arrive rounded",
    ),
    _d(
        _NODE,
        "result.value",
        None,
        "B.1 N5",
        "JavaScript numbers are doubles: integers beyond 2**53 come back rounded",
    ),
    _d(_NODE, "result.date_done", None, "B.1 N6", "celery-node writes date_done with Z"),
    _d(
        _NODE,
        "result.traceback",
        None,
        "B.1 N6",
        "celery-node writes the return value (or the error) as traceback",
    ),
    _d(
        _NODE,
        "result.exception",
        None,
        "B.1 N6",
        "celery-node writes a failure with result null, no exc_type",
    ),
    _d(
        _NODE,
        "result.status",
        None,
        "B.1 N7",
        "celery-node's worker ignores expires and embed (chain, callbacks)",
    ),
    _d(
        _NODE,
        "result.present",
        None,
        "B.1 N7",
        "celery-node's worker ignores the chain: later steps never run",
    ),
    _d(_NODE, "result.value", None, "B.1 N7", "celery-node's worker ignores expires"),
    _d(_NODE, "result.eta_respected", None, "B.1 N7", "celery-node's worker ignores eta"),
    # -- node-celery 0.2.8 (protocol v1) ---------------------------------------------------
    _d(_V1NODE, "envelope.priority", None, "B.3 C1", "node-celery writes no priority property"),
    _d(
        _V1NODE,
        "properties.correlation_id",
        None,
        "B.3 C2",
        "node-celery writes no correlation_id",
    ),
    _d(
        _V1NODE,
        "properties.reply_to",
        None,
        "B.3 C2",
        "node-celery writes no reply_to on AMQP",
    ),
    _d(
        _V1NODE,
        "properties.delivery_mode",
        None,
        "B.3 C2",
        "node-celery writes no delivery_mode on AMQP (messages are transient)",
    ),
    _d(
        _V1NODE,
        "body.arguments",
        None,
        "B.3 C4",
        "JavaScript numbers are doubles: integers beyond 2**53 arrive rounded",
    ),
    _d(
        _V1NODE,
        "client.read_back",
        "read_back.big_int",
        "B.3 C4",
        "JavaScript numbers are doubles: integers beyond 2**53 are read rounded",
    ),
    # -- rusty-celery 0.5.5 -----------------------------------------------------------------
    _d(_RUST, "headers.present", None, "B.2 R1", _RUST_HEADERS),
    _d(_RUST, "headers.type", None, "B.2 R1", _RUST_HEADERS),
    _d(_RUST, "headers.root_id", None, "B.2 R1", _RUST_HEADERS),
    _d(_RUST, "headers.lang", None, "B.2 R1", _RUST_HEADERS),
    _d(_RUST, "headers.order", None, "B.2 R1", "rusty-celery writes headers in its own order"),
    _d(
        _RUST,
        "headers.time",
        None,
        "B.2 R2",
        "rusty-celery writes 9 (Redis) or 3 (AMQP) fraction digits, not isoformat()'s 6",
    ),
    _d(_RUST, "envelope.field", None, "B.2 R3", "rusty-celery's Redis envelope lacks fields"),
    _d(
        _RUST,
        "envelope.delivery_info",
        None,
        "B.2 R3",
        "rusty-celery's Redis envelope has no delivery_info",
    ),
    _d(_RUST, "envelope.priority", None, "B.2 R3", "rusty-celery's Redis envelope has no priority"),
    _d(
        _RUST,
        "properties.delivery_mode",
        None,
        "B.2 R3",
        "rusty-celery's Redis envelope has no delivery_mode",
    ),
    _d(_RUST, "properties.reply_to", None, "B.2 R3", "rusty-celery writes reply_to null"),
    _d(
        _RUST,
        "body.positional",
        None,
        "B.2 R4",
        "rusty-celery sends every argument as a keyword argument named after the parameter",
    ),
    _d(_RUST, "result.present", None, "B.2 R5", "rusty-celery 0.5.5 has no result backend"),
)


def apply_deviations(outcomes: Iterable[Outcome], client: str | None) -> list[Outcome]:
    """Failed outcomes that are a known deviation of ``client`` become ``deviation``."""
    out = list(outcomes)
    if not client:
        return out
    known = [d for d in DEVIATIONS if d.client == client]
    for o in out:
        if o.status != FAIL:
            continue
        for d in known:
            if d.check == o.check and (d.path is None or o.path.startswith(d.path)):
                o.status = DEVIATION
                o.deviation = f"{d.ref}: {d.note}"
                break
    return out
