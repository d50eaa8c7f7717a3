"""The interop matrix: Celery 5.7, celery-node 0.5.9, rusty-celery 0.5.5 and node-celery 0.2.8
(protocol v1, a client only) against Celeriac.

For each client and broker: (a) they send, a Celeriac worker runs, they read the result;
(b) Celeriac sends, their worker runs, Celeriac reads the result; (c) ``celeriac interop verify``
against them, role client and role worker. Known deviations (SPEC.md Appendix B) are allowed
only for the client that has them; the table is printed at the end of the run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import App
from celeriac.interop import client_capabilities, execute, verify_client, verify_worker
from celeriac.interop.cases import cases_for
from celeriac.worker import run_worker, stop_worker
from interop import celery_env
from tests.brokers import AMQP_URL, REDIS_URL, SQS_URL, require, unique
from tests.interop import harnesses
from tests.waiting import eventually

pytestmark = [pytest.mark.celery, pytest.mark.broker]

BROKERS = {"redis": REDIS_URL, "rabbitmq": AMQP_URL, "sqs": SQS_URL}
CELLS = [
    ("celery", "redis"),
    ("celery", "rabbitmq"),
    ("celery", "sqs"),
    ("celery-node", "redis"),
    ("celery-node", "rabbitmq"),
    ("rusty-celery", "redis"),
    ("rusty-celery", "rabbitmq"),
    ("node-celery", "redis"),
    ("node-celery", "rabbitmq"),
]
#: Clients that have no worker: (b) and (c) worker are not applicable.
CLIENT_ONLY = {"node-celery": "node-celery 0.2.8 is a client only (no worker)"}
#: (a)/(b) results a client gets wrong in a documented way: SPEC Appendix B.
KNOWN_RESULT_DEVIATIONS = {
    ("celery-node", "big_int"): "B.1 N5",  # JavaScript doubles round 2**53 + 1
    ("node-celery", "big_int"): "B.3 C4",  # the same doubles
}


def _backend() -> str:
    return REDIS_URL.rsplit("/", 1)[0] + "/1"


@pytest.fixture(params=CELLS, ids=[f"{c}-{b}" for c, b in CELLS])
def cell(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    client, broker = request.param
    require("redis")
    require(broker)
    if client == "celery":
        celery_env.ensure(quiet=True)
    return client, broker, BROKERS[broker]


def conformance_app(broker: str, queue: str) -> App:
    """The conformance tasks (CONFORMANCE.md), as the interop verifier's worker runs them."""
    return execute.conformance_app(broker, _backend(), queue)


@pytest.fixture
def queue() -> str:
    return unique("conformance")


def declared_cases(client: str) -> list[dict[str, Any]]:
    """The cases the client's capability file declares (read_back only with --execute)."""
    supports = client_capabilities(client, None).supports
    return [c for c in cases_for("client") if c["name"] in supports and not c.get("report")]


def _cell(deviations: list[str]) -> str:
    return "ok" + (f" (dev {', '.join(sorted(set(deviations)))})" if deviations else "")


def test_a_they_send_celeriac_runs(cell: tuple[str, str, str], queue: str) -> None:
    client, name, broker = cell
    app = conformance_app(broker, queue)
    worker = run_worker(app, concurrency=4)
    cases = {c["name"]: c for c in declared_cases(client)}
    if client == "celery" and name == "rabbitmq":
        # Celery turns an expiry in the past into the AMQP property expiration=0, and RabbitMQ
        # then expires the message at the queue (to its dead-letter queue) unless a consumer can
        # take it that instant: there is no defined result to wait for.
        cases.pop("expired", None)
    try:
        lines = harnesses.send(client, broker, _backend(), queue, list(cases.values()), wait=60)
        sent = [line for line in lines if "id" in line]
        results: dict[str, tuple[str, Any]] = {}
        if client == "rusty-celery":  # no result backend in rusty-celery: Celeriac reads (B.2 R5)
            for line in sent:
                res = app.AsyncResult(line["id"])
                eventually(res.ready, timeout=60, what=f"{line['case']} result")
                results[line["case"]] = (res.state, res.result if res.state == "SUCCESS" else None)
        else:
            for line in lines:
                if "status" in line:
                    results[line["case"]] = (line["status"], line["result"])
    finally:
        stop_worker(worker)
        app.close()
    assert sent, f"{client} sent nothing: {lines}"
    deviations, wrong = [], []
    for line in sent:
        case = cases[line["case"]]
        status, value = results.get(line["case"], ("MISSING", None))
        want = case.get("status", "SUCCESS")
        ok = status == want and (want != "SUCCESS" or value == case["result"])
        if ok:
            continue
        known = KNOWN_RESULT_DEVIATIONS.get((client, line["case"]))
        (deviations if known else wrong).append(known or f"{line['case']}: {status} {value!r}")
    harnesses.record(client, name, "a", "FAIL" if wrong else _cell(deviations))
    assert not wrong, f"{client} -> Celeriac worker on {name}: {wrong}"


def _their_worker(client: str, broker: str, queue: str) -> Iterator[Any]:
    if client in CLIENT_ONLY:
        pytest.skip(CLIENT_ONLY[client])
    if client == "celery":
        with celery_env.CeleryWorker(
            harnesses.CLIENTS / "celery",
            "conformance_app",
            broker_url=broker,
            backend_url=_backend(),
            queues=[queue],
            env={"CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": _backend()},
        ) as worker:
            yield worker
        return
    worker = harnesses.ForeignWorker(client, broker, _backend(), queue)
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def their_worker(cell: tuple[str, str, str], queue: str) -> Iterator[Any]:
    client, _name, broker = cell
    yield from _their_worker(client, broker, queue)


def test_b_celeriac_sends_they_run(
    cell: tuple[str, str, str], queue: str, their_worker: Any
) -> None:
    client, name, broker = cell
    app = conformance_app(broker, queue)
    try:
        calls = [("plain_args", (2, 3), 5), ("kwargs", (), 9), ("sleep", (0.2,), 0.2)]
        results = {
            "plain_args": app.send_task("interop.add", (2, 3), queue=queue),
            "kwargs": app.send_task("interop.add", (), {"x": 4, "y": 5}, queue=queue),
            "sleep": app.send_task("interop.sleep", (0.2,), queue=queue),
        }
        if client == "rusty-celery":  # no result backend (B.2 R5): the worker's own report
            ran = eventually(
                lambda: (
                    {line["id"]: line["result"] for line in their_worker.lines() if "ran" in line}
                    if sum("ran" in line for line in their_worker.lines()) >= 3
                    else None
                ),
                timeout=60,
                what="rusty-celery ran the three calls",
            )
            for case, _args, want in calls:
                assert ran[results[case].id] == want, case
            assert results["plain_args"].state == "PENDING"
            harnesses.record(client, name, "b", "ok (dev B.2 R5: no results)")
            return
        for case, _args, want in calls:
            assert results[case].get(timeout=60) == want, case
    finally:
        app.close()
    harnesses.record(client, name, "b", "ok")


def test_c_verify_role_client(cell: tuple[str, str, str], queue: str) -> None:
    client, name, broker = cell
    done = threading.Event()
    sender_error: list[BaseException] = []

    def start_sender() -> None:
        def run() -> None:
            try:
                harnesses.send(client, broker, _backend(), queue, declared_cases(client))
            except BaseException as exc:
                sender_error.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, daemon=True).start()

    report = verify_client(broker, queue, client=client, timeout=60, on_ready=start_sender)
    done.wait(60)
    assert not sender_error, sender_error
    devs = sorted({o.deviation.split(":")[0] for o in report.outcomes if o.deviation})
    failed = [f"{o.case} {o.check} {o.path}: {o.reason}" for o in report.failed()]
    harnesses.record(client, name, "c client", "FAIL" if failed else _cell(devs))
    assert not failed, "\n".join(failed[:40])
    assert report.counts()["pass"] > 50


@pytest.mark.parametrize("results", ["redis", "rpc"])
def test_c_verify_role_client_execute(cell: tuple[str, str, str], queue: str, results: str) -> None:
    """--execute: the verifier's worker runs what the client sends and stores the results (Redis
    backend, or rpc:// replies); the client reads them and reports what it read (read_back)."""
    client, name, broker = cell
    backend = _backend() if results == "redis" else "rpc://"
    if results == "rpc" and name == "sqs":
        pytest.skip("Celery's own rpc:// client fails on SQS (AttributeError in its consumer)")
    if "read_back" not in client_capabilities(client, None).supports:
        pytest.skip(f"{client}'s harness does not send read_back (its capability file)")
    if results == "rpc" and client == "node-celery":
        pytest.skip("node-celery reads results from Redis or Celery's old amqp backend, not rpc://")
    done = threading.Event()
    lines: list[dict[str, Any]] = []
    sender_error: list[BaseException] = []
    supports = client_capabilities(client, None).supports
    # On rpc:// Celery refuses a chord (it needs a backend that stores results), and a chain's
    # last result goes to the reply queue of the worker that sent the last step, not the client.
    cases = [
        c
        for c in cases_for("client")
        if c["name"] in supports and not (results == "rpc" and c["name"] in ("chord", "chain"))
    ]

    def start_sender() -> None:
        def run() -> None:
            try:
                lines.extend(harnesses.send(client, broker, backend, queue, cases, wait=60))
            except BaseException as exc:
                sender_error.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, daemon=True).start()

    report = verify_client(
        broker,
        queue,
        client=client,
        cases=[c["name"] for c in cases],
        timeout=90,
        execute=backend,
        on_ready=start_sender,
    )
    assert done.wait(60), "the client did not finish"
    assert not sender_error, sender_error
    failed = [f"{o.case} {o.check} {o.path}: {o.reason}" for o in report.failed()]
    harnesses.record(client, name, f"c execute {results}", "FAIL" if failed else "ok")
    assert not failed, "\n".join(failed[:40]) + f"\nthe client read: {lines[-3:]}"
    read = {o.path: o.status for o in report.outcomes if o.check == "client.read_back"}
    assert read and set(read.values()) <= {"pass", "deviation"}, read  # deviation: B.3 C4
    assert set(read) == {f"read_back.{c['name']}" for c in cases if not c.get("report")}
    statuses = {line["case"]: line.get("status") for line in lines if "status" in line}
    assert statuses["expired"] == "REVOKED" and statuses["fail"] == "FAILURE"


def test_c_verify_role_worker(cell: tuple[str, str, str], queue: str, their_worker: Any) -> None:
    client, name, broker = cell
    report = verify_worker(broker, _backend(), queue, client=client, timeout=20)
    devs = sorted({o.deviation.split(":")[0] for o in report.outcomes if o.deviation})
    failed = [f"{o.case} {o.check} {o.path}: {o.reason}" for o in report.failed()]
    harnesses.record(client, name, "c worker", "FAIL" if failed else _cell(devs))
    assert not failed, "\n".join(failed[:40])
