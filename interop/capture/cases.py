"""The capture cases: one Celery call each, with fixed task ids and fixed times.

A case's ``send(app, queue)`` makes exactly the call its description names, to ``queue``. Ids
come from :func:`case_id` (uuid5 of the case name and a role), so every run and every broker
sees the same ids. ``app.now`` is pinned to :data:`FIXED_NOW` by the capture, which makes the
ETA of ``countdown`` and the AMQP ``expiration`` of ``expires`` deterministic too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from celery import chain, chord, group

ID_NAMESPACE = uuid.UUID("5d6c1e2a-0b7f-4c39-9a51-3e2f64b0c0de")
FIXED_NOW = dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
FIXED_ETA = dt.datetime(2026, 1, 1, 0, 5, 0, tzinfo=dt.UTC)
FIXED_EXPIRES = dt.datetime(2026, 1, 1, 1, 0, 0, tzinfo=dt.UTC)

TZ_PLUS2 = dt.timezone(dt.timedelta(hours=2))
AWARE_DT = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=TZ_PLUS2)
NAIVE_UTC_DT = dt.datetime(2026, 3, 4, 3, 6, 7, 891011)
A_DATE = dt.date(2026, 3, 4)
A_TIME = dt.time(5, 6, 7, 891011)
A_UUID = uuid.UUID("6f1c2b8e-3d4a-4b5c-9d6e-7f8091a2b3c4")
UNICODE_TEXT = "héllo 世界 🥕"


def case_id(case: str, role: str = "task") -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{case}/{role}"))


@dataclass(frozen=True)
class Sent:
    """What a case put on the wire, as the caller saw it: one entry per expected message."""

    task: str
    id: str
    args: tuple[Any, ...] | list[Any]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    call: str  # the call, as a person would write it, for the description
    send: Callable[[Any, str], None]
    messages: list[Sent]
    protocol: int = 2
    serializer: str = "json"
    compression: str | None = None
    notes: list[str] = field(default_factory=list)


def _echo(name: str, call: str, args: tuple, kwargs: dict | None = None) -> Case:
    kwargs = kwargs or {}
    tid = case_id(name)

    def send(app, queue):
        app.tasks["interop.echo"].apply_async(args, kwargs, task_id=tid, queue=queue)

    return Case(name, call, send, [Sent("interop.echo", tid, args, kwargs)])


def _add(name: str, call: str, **options: Any) -> Case:
    tid = case_id(name)

    def send(app, queue):
        app.tasks["interop.add"].apply_async((2, 3), task_id=tid, queue=queue, **options)

    extra = {
        k: options[k]
        for k in ("compression", "serializer")
        if k in options  # recorded on the Case for the decoder side
    }
    return Case(name, call, send, [Sent("interop.add", tid, (2, 3), {})], **extra)


def _kwargs_case() -> Case:
    tid = case_id("kwargs")

    def send(app, queue):
        app.tasks["interop.add"].apply_async(kwargs={"x": 2, "y": 3}, task_id=tid, queue=queue)

    return Case(
        "kwargs",
        "interop.add(x=2, y=3) via apply_async(kwargs=..., task_id=...)",
        send,
        [Sent("interop.add", tid, (), {"x": 2, "y": 3})],
    )


def _retries_case() -> Case:
    tid = case_id("retries")

    def send(app, queue):
        app.send_task("interop.add", args=(2, 3), retries=3, task_id=tid, queue=queue)

    return Case(
        "retries",
        "app.send_task('interop.add', args=(2, 3), retries=3, task_id=...)",
        send,
        [Sent("interop.add", tid, (2, 3), {})],
    )


def _link_case() -> Case:
    tid = case_id("link_link_error")

    def send(app, queue):
        t = app.tasks
        t["interop.add"].apply_async(
            (2, 3),
            task_id=tid,
            queue=queue,
            link=t["interop.echo"].s(),
            link_error=t["interop.echo"].si("err"),
        )

    return Case(
        "link_link_error",
        "interop.add.apply_async((2, 3), link=echo.s(), link_error=echo.si('err'))",
        send,
        [Sent("interop.add", tid, (2, 3), {})],
    )


def _chain_case() -> Case:
    ids = [case_id("chain", f"step{i}") for i in range(3)]

    def send(app, queue):
        add = app.tasks["interop.add"]
        steps = [add.s(1, 2), add.s(3), add.s(4)]
        chain(*(s.set(task_id=i, queue=queue) for s, i in zip(steps, ids, strict=True)))()

    return Case(
        "chain",
        "chain(add.s(1, 2), add.s(3), add.s(4))() (only the first task is sent; the rest ride "
        "in embed.chain)",
        send,
        [Sent("interop.add", ids[0], (1, 2), {})],
    )


def _group_case() -> Case:
    gid = case_id("group", "group")
    ids = [case_id("group", f"member{i}") for i in range(2)]

    def send(app, queue):
        add = app.tasks["interop.add"]
        group(
            add.s(1, 2).set(task_id=ids[0], queue=queue),
            add.s(3, 4).set(task_id=ids[1], queue=queue),
        ).apply_async(task_id=gid)

    return Case(
        "group",
        "group(add.s(1, 2), add.s(3, 4)).apply_async(task_id=<group id>)",
        send,
        [Sent("interop.add", ids[0], (1, 2), {}), Sent("interop.add", ids[1], (3, 4), {})],
    )


def _chord_case() -> Case:
    gid = case_id("chord", "group")
    body_id = case_id("chord", "body")
    ids = [case_id("chord", f"member{i}") for i in range(2)]

    def send(app, queue):
        t = app.tasks
        add = t["interop.add"]
        # The chord's own task_id option names the header group (Celery 5.7 canvas.py).
        chord(
            [
                add.s(1, 2).set(task_id=ids[0], queue=queue),
                add.s(3, 4).set(task_id=ids[1], queue=queue),
            ],
            t["interop.tsum"].s().set(task_id=body_id, queue=queue),
            task_id=gid,
        ).apply_async()

    return Case(
        "chord",
        "chord([add.s(1, 2), add.s(3, 4)], tsum.s())() with the Redis result backend",
        send,
        [Sent("interop.add", ids[0], (1, 2), {}), Sent("interop.add", ids[1], (3, 4), {})],
    )


def all_cases() -> list[Case]:
    return [
        _add("plain_args", "interop.add(2, 3) via apply_async((2, 3), task_id=...)"),
        _kwargs_case(),
        _echo(
            "json_types",
            "interop.echo(None, True, False, 0, -1, 1.5, 's', [1, [2, [3]]], {'a': {'b': [None]}})",
            (None, True, False, 0, -1, 1.5, "s", [1, [2, [3]]], {"a": {"b": [None]}}),
        ),
        _echo(
            "tagged_datetime",
            "interop.echo(<aware datetime +02:00 with microseconds>, <naive UTC datetime>)",
            (AWARE_DT, NAIVE_UTC_DT),
        ),
        _echo("tagged_date_time", "interop.echo(<date>, <time>)", (A_DATE, A_TIME)),
        _echo("tagged_uuid", "interop.echo(uuid.UUID(...))", (A_UUID,)),
        _echo(
            "tagged_decimal",
            "interop.echo(Decimal('1.10'), Decimal('-3.14159265358979323846'))",
            (Decimal("1.10"), Decimal("-3.14159265358979323846")),
        ),
        _echo("tagged_bytes", "interop.echo(b'\\x00\\xffhello')", (b"\x00\xffhello",)),
        _echo(
            "unicode",
            f"interop.echo({UNICODE_TEXT!r}, ключ={UNICODE_TEXT!r})",
            (UNICODE_TEXT,),
            {"ключ": UNICODE_TEXT},
        ),
        _echo("big_int", "interop.echo(2**100, -(2**70), 2**63)", (2**100, -(2**70), 2**63)),
        _add(
            "countdown",
            "interop.add.apply_async((2, 3), countdown=60) with app.now() pinned to "
            f"{FIXED_NOW.isoformat()}",
            countdown=60,
        ),
        _add(
            "eta_expires",
            f"interop.add.apply_async((2, 3), eta={FIXED_ETA.isoformat()}, "
            f"expires={FIXED_EXPIRES.isoformat()}) with app.now() pinned to "
            f"{FIXED_NOW.isoformat()}",
            eta=FIXED_ETA,
            expires=FIXED_EXPIRES,
        ),
        _add("priority", "interop.add.apply_async((2, 3), priority=7)", priority=7),
        _retries_case(),
        _add(
            "time_limits",
            "interop.add.apply_async((2, 3), time_limit=10, soft_time_limit=5)",
            time_limit=10,
            soft_time_limit=5,
        ),
        _add(
            "shadow_headers",
            "interop.add.apply_async((2, 3), shadow='shadow.name', headers={'x-custom': 'v'})",
            shadow="shadow.name",
            headers={"x-custom": "v"},
        ),
        _add(
            "ignore_result",
            "interop.add.apply_async((2, 3), ignore_result=True)",
            ignore_result=True,
        ),
        _link_case(),
        _chain_case(),
        _group_case(),
        _chord_case(),
        _add(
            "compression_zlib",
            "interop.add.apply_async((2, 3), compression='zlib')",
            compression="zlib",
        ),
        _add(
            "compression_bzip2",
            "interop.add.apply_async((2, 3), compression='bzip2')",
            compression="bzip2",
        ),
        _add(
            "serializer_msgpack",
            "interop.add.apply_async((2, 3), serializer='msgpack')",
            serializer="msgpack",
        ),
        _add(
            "serializer_yaml",
            "interop.add.apply_async((2, 3), serializer='yaml')",
            serializer="yaml",
        ),
        _protocol_v1_case(),
    ]


def _protocol_v1_case() -> Case:
    tid = case_id("protocol_v1")

    def send(app, queue):
        app.tasks["interop.add"].apply_async((2, 3), task_id=tid, queue=queue)

    return Case(
        "protocol_v1",
        "interop.add(2, 3) with app.conf.task_protocol = 1",
        send,
        [Sent("interop.add", tid, (2, 3), {})],
        protocol=1,
    )
