"""CONFORMANCE.md's walk for a new client, run for a minimal client written here.

The client is a few lines of Python speaking raw Redis or AMQP (no Celery, no Celeriac), reading
results from Redis: it declares three
cases in a capability file, sends them when the verifier listens, and waits for its results, which
``verify --execute`` runs and stores. The roll-up is read from ``--report-json``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pika
import pytest
import redis

from celeriac.interop.cases import CLIENT_CASES
from tests.brokers import AMQP_URL, REDIS_URL, amqp_params, require, unique
from tests.waiting import eventually

pytestmark = [pytest.mark.broker]

CELERIAC = str(Path(sys.executable).with_name("celeriac"))
THREE = ("plain_args", "kwargs", "fail")


class MinimalClient:
    """Enough of the Celery protocol to send a call to Redis or RabbitMQ and read its result
    back from Redis."""

    def __init__(self, broker: str, backend: str, queue: str) -> None:
        self.broker = broker
        self.results = redis.Redis.from_url(backend)
        self.queue = queue

    def send(self, task: str, args: list[Any], kwargs: dict[str, Any]) -> str:
        task_id = str(uuid.uuid4())
        headers = {"lang": "py", "task": task, "id": task_id, "root_id": task_id}
        body = json.dumps([args, kwargs, {}]).encode()
        if self.broker.startswith("amqp"):
            self._send_amqp(task_id, headers, body)
            return task_id
        envelope = {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": self.queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        r = redis.Redis.from_url(self.broker)
        r.lpush(self.queue, json.dumps(envelope))
        r.close()
        return task_id

    def _send_amqp(self, task_id: str, headers: dict[str, Any], body: bytes) -> None:
        at = amqp_params(self.broker)
        credentials = pika.PlainCredentials(at.user, at.password)
        conn = pika.BlockingConnection(
            pika.ConnectionParameters(at.host, at.port, at.vhost, credentials)
        )
        channel = conn.channel()
        channel.confirm_delivery()
        props = pika.BasicProperties(
            content_type="application/json",
            content_encoding="utf-8",
            headers=headers,
            correlation_id=task_id,
            reply_to="",
            delivery_mode=2,
            priority=0,
        )
        channel.basic_publish("", self.queue, body, props)
        conn.close()

    def result(self, task_id: str, timeout: float) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            raw = self.results.get(f"celery-task-meta-{task_id}")
            meta: dict[str, Any] | None = None if raw is None else json.loads(raw)
            return meta if meta and meta["status"] in ("SUCCESS", "FAILURE", "REVOKED") else None

        return eventually(ready, timeout, f"a result for {task_id}", interval=0.05)


@pytest.mark.parametrize("broker_name", ["redis", "rabbitmq"])
def test_a_minimal_client_walks_the_conformance_guide(tmp_path: Path, broker_name: str) -> None:
    require("redis")
    require(broker_name)
    broker = {"redis": REDIS_URL, "rabbitmq": AMQP_URL}[broker_name]
    queue = unique("walk")
    backend = REDIS_URL.rsplit("/", 1)[0] + "/1"
    caps = tmp_path / "capabilities.toml"
    caps.write_text(
        'client = "minimal"\nsupports = ["plain_args", "kwargs", "fail"]\n\n'
        '[not_supported]\ncountdown = "the minimal client sends no options"\n'
    )
    report_path = tmp_path / "report.json"
    verifier = subprocess.Popen(
        [
            *(CELERIAC, "interop", "verify", "--role", "client", "-b", broker, "-Q", queue),
            *("--capabilities", str(caps), "--execute", "--backend", backend),
            *("--timeout", "60", "--report-json", str(report_path)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert verifier.stderr is not None
        line = verifier.stderr.readline()  # the guide: send once it says it listens
        assert "listening on" in line, line
        client = MinimalClient(broker, backend, queue)
        cases = {c["name"]: c for c in CLIENT_CASES}
        sent = {
            n: client.send(cases[n]["task"], cases[n]["args"], cases[n]["kwargs"]) for n in THREE
        }
        try:
            results = {n: client.result(i, timeout=60) for n, i in sent.items()}
        except TimeoutError as exc:
            verifier.kill()
            out, err = verifier.communicate(timeout=10)
            raise AssertionError(f"{exc}; the verifier said:\n{out}\n{err}") from None
        out, err = verifier.communicate(timeout=60)
    finally:
        if verifier.poll() is None:
            verifier.kill()
            verifier.wait(10)
    assert verifier.returncode == 0, out + err
    # its results, read back by the minimal client
    assert results["plain_args"]["status"] == "SUCCESS" and results["plain_args"]["result"] == 5
    assert results["kwargs"]["result"] == 9
    assert results["fail"]["status"] == "FAILURE"
    assert results["fail"]["result"]["exc_type"] == "ValueError"
    report = json.loads(report_path.read_text())
    by_case: dict[str, set[str]] = {}
    for o in report["outcomes"]:
        by_case.setdefault(o["case"], set()).add(o["status"])
    # N/A for every undeclared case, within a second of the verifier's start (no wait per case)
    for name in set(cases) - set(THREE):
        assert by_case[name] == {"n/a"}, (name, by_case[name])
    na = [o for o in report["outcomes"] if o["status"] == "n/a" and o["check"] == "case.received"]
    assert {o["case"] for o in na} == set(cases) - set(THREE)
    assert max(o["elapsed"] for o in na) < 1.0, [o["elapsed"] for o in na]
    assert any("sends no options" in o["reason"] for o in na if o["case"] == "countdown")
    # PASS for its three: no failure; what it leaves out (headers it need not write) only warns
    for name in THREE:
        assert "fail" not in by_case[name] and "pass" in by_case[name], (name, by_case[name])
    assert {r["status"] for r in report["rollup"]} == {"warn"}
    assert any(r["check"] == "headers.present" for r in report["rollup"])
    assert "by check" in out
