"""Issue 23's targets (the second performance wave), read from one ``python -m bench all`` run:
(target, measured, required, holds) rows for RESULTS.md and the console.

Each target is the issue's own wording, measured against peers of the same run. Memory of the
Kafka and ZooKeeper workers, and idle RSS against Celery with the same pool, come from
``python -m bench.memory`` (bench/NOTES.md), which starts one worker of each transport from its
command line; ``bench all`` measures RSS on Redis, RabbitMQ and SQS only.
"""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, bool]
MB = 1024 * 1024
PEERS = ("celery", "dramatiq", "taskiq")
LABELS = {"celery": "Celery", "dramatiq": "Dramatiq", "taskiq": "Taskiq"}
MIB, KIB10 = "payload=1048576", "payload=10240"


def _systems(section: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(section, dict):
        return {}
    return {k: v for k, v in section.items() if isinstance(v, dict) and "error" not in v}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _best(systems: dict[str, dict[str, Any]], key: str) -> tuple[str, float]:
    found = [(n, float(systems[n][key])) for n in PEERS if key in systems.get(n, {})]
    return max(found, key=lambda item: item[1]) if found else ("", 0.0)


def _publish(b: str, ours: dict[str, Any], systems: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "celery" in systems:
        theirs = systems["celery"]["publish"]
        rows.append((f"{b}: default delay() loop >= Celery's default", f"{ours['publish']:,.0f}/s",
                     f">= {theirs:,.0f}/s", ours["publish"] >= theirs))  # fmt: skip
    if "dramatiq" in systems:
        ratio = ours["publish"] / systems["dramatiq"]["publish"]
        rows.append((f"{b}: default delay() loop >= 50% of Dramatiq's",
                     f"{ratio:.0%} ({systems['dramatiq']['publish']:,.0f}/s)", ">= 50%",
                     ratio >= 0.5))  # fmt: skip
    return rows


def _round_trips(broker: str, b: str, ours: dict[str, Any], systems: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    celery = systems.get("celery", {})
    for q in ("p50", "p99"):
        if q not in ours or q not in celery:
            continue
        if broker == "redis":
            ratio = ours[q] / celery[q]
            rows.append((f"{b}: round trip {q} <= 1/2 of Celery's",
                         f"{_ms(ours[q])} ({ratio:.2f} of {_ms(celery[q])})", "<= 0.50",
                         ratio <= 0.5))  # fmt: skip
            others = {n: systems[n][q] for n in PEERS if q in systems.get(n, {})}
            lowest = min(others, key=lambda n: others[n])
            rows.append((f"{b}: round trip {q} below every peer's", _ms(ours[q]),
                         f"< {_ms(others[lowest])} ({LABELS[lowest]})",
                         ours[q] < others[lowest]))  # fmt: skip
        else:
            rows.append((f"{b}: round trip {q} below Celery's", _ms(ours[q]),
                         f"< {_ms(celery[q])}", ours[q] < celery[q]))  # fmt: skip
            dramatiq = systems.get("dramatiq", {})
            if q in dramatiq:
                ratio = ours[q] / dramatiq[q]
                rows.append((f"{b}: round trip {q} within 1.5x of Dramatiq's",
                             f"{ratio:.2f}x ({_ms(dramatiq[q])})", "<= 1.50x",
                             ratio <= 1.5))  # fmt: skip
    return rows


def _payloads(b: str, scaling: dict[str, dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    ours = scaling.get("celeriac", {})
    for key, label, factor in ((MIB, "1 MiB", 1.0), (KIB10, "10 KiB", 1.5)):
        peer, value = _best(scaling, key)
        if key not in ours or not peer:
            continue
        ratio = ours[key] / value
        rows.append((f"{b}: {label} drain >= {factor:g}x the best peer",
                     f"{ratio:.2f}x ({ours[key]:,.0f}/s; {LABELS[peer]} {value:,.0f}/s)",
                     f">= {factor:.2f}x", ratio >= factor))  # fmt: skip
    return rows


def _broker(broker: str, data: dict[str, Any]) -> list[Row]:
    b = {"redis": "Redis", "amqp": "RabbitMQ", "sqs": "SQS"}.get(broker, broker)
    systems = _systems(data.get("compare"))
    ours = systems.get("celeriac")
    if not ours:
        return []
    rows: list[Row] = []
    if broker == "amqp":
        rows += _publish(b, ours, systems)
    if broker in ("redis", "amqp"):
        rows += _round_trips(broker, b, ours, systems)
    ceiling = data.get("ceiling") if isinstance(data.get("ceiling"), dict) else {}
    if broker == "redis" and "practical_drain" in ceiling:
        ratio = ours["drain"] / ceiling["practical_drain"]
        rows.append((f"{b}: drain >= 25% of the practical Python ceiling",
                     f"{ratio:.0%} ({ours['drain']:,.0f} of {ceiling['practical_drain']:,.0f}/s)",
                     ">= 25%", ratio >= 0.25))  # fmt: skip
    if broker == "amqp":
        peer, value = _best(systems, "drain")
        if peer:
            ratio = ours["drain"] / value
            rows.append((f"{b}: drain >= 2x the best peer",
                         f"{ratio:.2f}x ({LABELS[peer]} {value:,.0f}/s)", ">= 2.00x",
                         ratio >= 2))  # fmt: skip
    if broker in ("redis", "amqp"):
        rows += _payloads(b, _systems(data.get("scaling")))
    if "rss_loaded_per_process" in ours:
        per = ours["rss_loaded_per_process"]
        rows.append((f"{b}: worker <= 50 MB RSS per process, loaded", f"{per / MB:.1f} MB",
                     "<= 50 MB", per <= 50 * MB))  # fmt: skip
    return rows


def targets(results: dict[str, Any]) -> list[Row]:
    """Issue 23's targets in these results, broker by broker, then Kafka's consume."""
    rows: list[Row] = []
    for broker, data in results.get("brokers", {}).items():
        try:
            rows += _broker(broker, data)
        except (KeyError, TypeError, ZeroDivisionError, ValueError) as exc:
            rows.append((f"{broker}: issue 23 targets", f"not computed ({exc!r})", "-", False))
    kafka = _systems(results.get("transports")).get("kafka")
    if kafka and kafka.get("raw_consume"):
        ratio = kafka["consume"] / kafka["raw_consume"]
        rows.append(("Kafka: consume >= 60% of the bare kafka-python loop",
                     f"{ratio:.0%} ({kafka['consume']:,.0f} vs {kafka['raw_consume']:,.0f}/s)",
                     ">= 60%", ratio >= 0.6))  # fmt: skip
    return rows
