"""The conformance checks against a deliberately broken client (no broker needed)."""

from __future__ import annotations

import base64
import json
import uuid

from celeriac.interop.cases import CLIENT_CASES
from celeriac.interop.checks import (
    FAIL,
    WARN,
    RawMessage,
    apply_deviations,
    check_message,
    check_result,
    now_utc,
)


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


def _warned(outcomes) -> set[tuple[str, str]]:
    return {(o.check, o.path) for o in outcomes if o.status == WARN}


def test_a_good_message_passes_every_check() -> None:
    outcomes, which = _check(_envelope(_headers(), json.dumps([[2, 3], {}, EMBED]).encode()))
    assert which == ("plain_args", 0)
    assert _failed(outcomes) == set()


def test_a_dropped_header_fails_at_its_path() -> None:
    headers = _headers()
    del headers["root_id"]
    outcomes, _ = _check(_envelope(headers, json.dumps([[2, 3], {}, EMBED]).encode()))
    # Receivers default a missing header (§11.4): a warning; root_id != id still fails.
    assert ("headers.present", "headers.root_id") in _warned(outcomes)
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
    assert ("headers.root_id", "headers.root_id") in _failed(plain)
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
    missing = [o for o in report.outcomes if o.check == "case.received" and o.case != "read_back"]
    assert missing and all(o.status == FAIL for o in missing)
    assert {o.case for o in missing} == {c["name"] for c in CLIENT_CASES if not c.get("report")}
    read_back = [o for o in report.outcomes if o.case == "read_back"]
    assert [o.status for o in read_back] == ["n/a"]


def _statuses(outcomes, check: str) -> list[str]:
    return [o.status for o in outcomes if o.check == check]


def test_what_receivers_tolerate_only_warns() -> None:
    headers = _headers(eta="2026-01-02T03:04:05.123Z")
    data = json.loads(_envelope(headers, json.dumps([[10, 5], {}, {}]).encode()))
    data["properties"]["body_encoding"] = "utf-8"
    data["body"] = json.dumps([[10, 5], {}, {}])
    data["content-encoding"] = "gzip"
    outcomes, which = _check(json.dumps(data).encode())
    assert which == ("countdown", 0)
    assert _failed(outcomes) <= {("headers.eta", "headers.eta")}  # 2026 is not "now + 2 s"
    warned = _warned(outcomes)
    assert ("envelope.body_encoding", "envelope.properties.body_encoding") in warned
    assert ("content.encoding", "content-encoding") in warned
    assert ("headers.time", "headers.eta") in warned
    assert ("body.shape", "body[2].callbacks") in warned
    assert all("tolerated, §11.4" in o.reason for o in outcomes if o.status == WARN)


def test_what_receivers_refuse_still_fails() -> None:
    data = json.loads(_envelope(_headers(), json.dumps([[2, 3], {}, EMBED]).encode()))
    data["properties"]["body_encoding"] = "rot13"
    outcomes, _ = _check(json.dumps(data).encode())
    assert ("envelope.parse", "envelope.properties.body_encoding") in _failed(outcomes)
    naive = _headers(eta="2026-01-02T03:04:05")
    outcomes, _ = _check(_envelope(naive, json.dumps([[2, 3], {}, EMBED]).encode()))
    assert ("headers.time", "headers.eta") in _failed(outcomes)


def test_a_v1_message_is_lifted_and_checked_as_its_case() -> None:
    tid = str(uuid.uuid4())
    body = json.dumps({"task": "interop.add", "id": tid, "args": [2, 3], "kwargs": {}}).encode()
    outcomes, which = _check(_envelope({}, body))
    assert which == ("plain_args", 0)
    assert _statuses(outcomes, "message.version") == [WARN]
    assert _statuses(outcomes, "body.arguments") == ["pass"]
    assert not _statuses(outcomes, "headers.present")  # v1 has no header table to check


def _read_back_message(report: dict) -> bytes:
    body = json.dumps([["read_back", report], {}, EMBED]).encode()
    return _envelope(_headers(task="interop.echo"), body)


def test_read_back_compares_what_the_client_read_with_what_was_stored() -> None:
    from celeriac.interop.cases import cases_for

    cases = [c for c in cases_for("client") if c["name"] in ("plain_args", "fail", "read_back")]
    raw = RawMessage(
        "json",
        "q",
        now_utc(),
        data=_read_back_message(
            {"plain_args": {"status": "SUCCESS", "result": 5}, "fail": {"status": "FAILURE"}}
        ),
        broker="redis",
        list_key="q",
    )
    outcomes, which = check_message(raw, cases)
    assert which == ("read_back", 0)
    got = {o.path: o.status for o in outcomes if o.check == "client.read_back"}
    assert got == {"read_back.plain_args": "pass", "read_back.fail": FAIL}


def test_rollup_groups_by_check_and_fail_on_follows_severity() -> None:
    from celeriac.interop.report import Report

    headers = _headers(lang="PY!", root_id="other")
    outcomes, _ = _check(_envelope(headers, json.dumps([[2, 3], {}, EMBED]).encode()))
    for o in outcomes:
        o.message = 1
    report = Report("client", "redis", None, outcomes)
    rows = {r.check: r for r in report.rollup()}
    assert rows["headers.lang"].severity == "cosmetic" and rows["headers.lang"].messages == 1
    assert rows["headers.lang"].example.reason == "is 'PY!'"
    assert report.fails_at("cosmetic") and not report.fails_at("interop-breaking")


def test_a_record_naming_our_module_for_a_celery_exception_fails() -> None:
    from datetime import UTC, datetime

    from celeriac.interop.cases import cases_for

    case = next(c for c in cases_for("worker") if c["name"] == "expired")
    tid = str(uuid.uuid4())
    record = {
        "status": "REVOKED",
        "result": {
            "exc_type": "TaskRevokedError",
            "exc_message": ["expired"],
            "exc_module": "celeriac.exceptions",
        },
        "traceback": None,
        "children": [],
        "date_done": datetime.now(UTC).isoformat(),
        "task_id": tid,
    }
    outcomes = check_result(case, tid, json.dumps(record).encode(), ["REVOKED"], sent_at=now_utc())
    bad = [o for o in outcomes if o.check == "result.exception"]
    assert [o.status for o in bad] == [FAIL] and "celery.exceptions" in bad[0].reason
    record["result"]["exc_module"] = "celery.exceptions"
    outcomes = check_result(case, tid, json.dumps(record).encode(), ["REVOKED"], sent_at=now_utc())
    assert [o.status for o in outcomes if o.check == "result.exception"] == ["pass"]


def test_capability_files_are_checked_and_undeclared_cases_are_na_at_once(tmp_path) -> None:
    import time

    import pytest

    from celeriac.interop import load_capabilities, parse_supports
    from celeriac.interop.verify import verify_client

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"supports": ["plain_args", "teleport"]}))
    with pytest.raises(ValueError, match="teleport"):
        load_capabilities(bad)
    with pytest.raises(ValueError, match="unknown key"):
        (tmp_path / "k.toml").write_text('supports = []\nsupport = ["x"]\n')
        load_capabilities(tmp_path / "k.toml")
    started = time.monotonic()
    report = verify_client(
        f"memory://caps-{uuid.uuid4().hex[:8]}",
        "q",
        capabilities=parse_supports("plain_args"),
        timeout=0.2,
    )
    assert time.monotonic() - started < 5
    statuses = {o.case: o.status for o in report.outcomes if o.check == "case.received"}
    assert statuses.pop("plain_args") == FAIL  # declared, never sent
    assert set(statuses.values()) == {"n/a"}
