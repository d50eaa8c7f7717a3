"""The conformance checks against a deliberately broken client (no broker needed)."""

from __future__ import annotations

import base64
import json
import uuid

from celeriac.interop.cases import CLIENT_CASES
from celeriac.interop.checks import FAIL, RawMessage, apply_deviations, check_message, now_utc


def _envelope(headers: dict, body: bytes, queue: str = "q") -> bytes:
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "correlation_id": headers.get("id"),
                "reply_to": "r",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    ).encode()


def _headers(**over: object) -> dict:
    tid = str(uuid.uuid4())
    h = {
        "lang": "py",
        "task": "interop.add",
        "id": tid,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": tid,
        "parent_id": None,
        "argsrepr": "(2, 3)",
        "kwargsrepr": "{}",
        "origin": "gen1@h",
        "ignore_result": False,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    h.update(over)
    return h


EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def _check(data: bytes, client: str | None = None):
    raw = RawMessage("json", "q", now_utc(), data=data, broker="redis", list_key="q")
    outcomes, which = check_message(raw, CLIENT_CASES)
    return apply_deviations(outcomes, client), which


def _failed(outcomes) -> set[tuple[str, str]]:
    return {(o.check, o.path) for o in outcomes if o.status == FAIL}


def test_a_good_message_passes_every_check() -> None:
    outcomes, which = _check(_envelope(_headers(), json.dumps([[2, 3], {}, EMBED]).encode()))
    assert which == ("plain_args", 0)
    assert _failed(outcomes) == set()


def test_a_dropped_header_fails_at_its_path() -> None:
    headers = _headers()
    del headers["root_id"]
    outcomes, _ = _check(_envelope(headers, json.dumps([[2, 3], {}, EMBED]).encode()))
    assert ("headers.present", "headers.root_id") in _failed(outcomes)
    assert ("headers.root_id", "headers.root_id") in _failed(outcomes)


def test_a_bad_eta_fails_the_time_checks() -> None:
    headers = _headers(eta="20260102T030405")
    outcomes, _ = _check(_envelope(headers, json.dumps([[2, 3], {}, EMBED]).encode()))
    failed = _failed(outcomes)
    assert ("headers.time", "headers.eta") in failed
    assert ("message.accepted", "headers.eta") in failed


def test_a_non_json_body_and_envelope_fail_with_reasons() -> None:
    outcomes, which = _check(_envelope(_headers(), b"\x00not json"))
    assert which is None
    assert any(o.check == "body.decode" and o.status == FAIL for o in outcomes)
    outcomes, _ = _check(b"{not an envelope")
    assert [o.check for o in outcomes if o.status == FAIL] == ["envelope.parse"]


def test_hostile_nesting_fails_body_decode() -> None:
    deep: object = 1
    for _ in range(500):
        deep = [deep]
    body = json.dumps([["big_int", deep], {}, EMBED]).encode()
    outcomes, _ = _check(_envelope(_headers(task="interop.echo"), body))
    assert any(o.check == "body.decode" and o.status == FAIL for o in outcomes)


def test_deviations_only_for_the_named_client() -> None:
    headers = {"lang": "js", "task": "interop.add", "id": str(uuid.uuid4())}
    data = _envelope(headers, json.dumps([[2, 3], {}, {}]).encode())
    plain, _ = _check(data)
    node, _ = _check(data, client="celery-node")
    assert ("headers.present", "headers.root_id") in _failed(plain)
    assert _failed(node) == set()
    assert any(o.status == "deviation" and o.deviation.startswith("B.1 N1") for o in node)


def test_a_huge_message_fails_the_size_check_with_the_limit() -> None:
    from celeriac.protocol import Limits

    body = json.dumps([["x" * 300_000, 1], {}, EMBED]).encode()
    raw = RawMessage(
        "json",
        "q",
        now_utc(),
        data=_envelope(_headers(task="interop.echo"), body),
        broker="redis",
        list_key="q",
    )
    outcomes, _ = check_message(raw, CLIENT_CASES, limits=Limits(max_message_bytes=256 * 1024))
    size = [o for o in outcomes if o.check == "envelope.size"]
    assert [o.status for o in size] == [FAIL]
    assert "more than the limit of 262144" in size[0].reason


def test_a_client_that_sends_nothing_is_reported_not_waited_for() -> None:
    import time

    from celeriac.interop.verify import verify_client

    started = time.monotonic()
    report = verify_client(f"memory://silent-{uuid.uuid4().hex[:8]}", "q", timeout=1.0)
    assert time.monotonic() - started < 15
    missing = [o for o in report.outcomes if o.check == "case.received"]
    assert missing and all(o.status == FAIL for o in missing)
    assert {o.case for o in missing} == {c["name"] for c in CLIENT_CASES}
