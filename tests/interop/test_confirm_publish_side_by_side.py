"""Kombu's ``confirm_publish`` side by side: with it on, ``send_task`` of real Celery 5.7 and of
Celeriac waits for RabbitMQ's confirm; with it off, both return while the broker has not
answered. The broker "does not answer" by a proxy that relays nothing (tests/faults/proxy.py):
each client's send is started while the proxy is frozen, and whether it returned is observed
before the proxy is thawed. Then both messages (first and second) are in the queue."""

from __future__ import annotations

import queue as queue_module
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pika
import pytest

from interop import celery_env
from tests.brokers import AMQP_URL, require, unique
from tests.faults.proxy import CuttableProxy
from tests.waiting import eventually

pytestmark = [pytest.mark.celery, pytest.mark.broker]

CLIENT = Path(__file__).with_name("confirm_publish_client.py")
# How long a send may take to return while nothing is relayed: a send that waits for no answer
# returns in well under this; one that waits for a confirm never does until the thaw.
UNANSWERED = 3.0


class _Client:
    """The client script in a process of its own, its stdout lines read by a thread."""

    def __init__(self, python: str, package: str, url: str, queue: str, confirm: bool) -> None:
        env = celery_env._clean_env(None) if package == "celery" else None
        self.proc = subprocess.Popen(
            [python, str(CLIENT), package, url, queue, "on" if confirm else "off"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )  # fmt: skip
        self.lines: queue_module.Queue[str] = queue_module.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, line: str, timeout: float) -> bool:
        try:
            return self.lines.get(timeout=timeout) == line
        except queue_module.Empty:
            return False

    def send(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


def _depth(queue: str) -> int:
    where = urlsplit(AMQP_URL)
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(
            where.hostname, where.port or 5672,
            credentials=pika.PlainCredentials(where.username or "guest", where.password or "guest"),
        )
    )  # fmt: skip
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def _observe(python: str, package: str, confirm: bool) -> dict[str, object]:
    """What one client does when the broker stops answering after its first send."""
    where = urlsplit(AMQP_URL)
    proxy = CuttableProxy(target=where.port or 5672, host=where.hostname or "127.0.0.1")
    url = AMQP_URL.replace(where.netloc.rsplit("@", 1)[-1], f"127.0.0.1:{proxy.port}", 1)
    queue = unique(f"confirm-{package}")
    client = _Client(python, package, url, queue, confirm)
    try:
        assert client.expect("ready", 120), f"{package} client did not start"
        proxy.freeze()
        client.send()
        returned_unanswered = client.expect("sent", UNANSWERED)
        proxy.thaw()
        if not returned_unanswered:
            assert client.expect("sent", 60), f"{package}: the send never returned after the thaw"
        err = client.finish()
        assert client.proc.returncode == 0, err[-2000:]
        depth = eventually(lambda: _depth(queue) == 2 and 2, 10, f"both {package} messages queued",
                           detail=lambda: _depth(queue))  # fmt: skip
        return {"returned while unanswered": returned_unanswered, "queued": depth}
    finally:
        if client.proc.poll() is None:
            client.proc.kill()
        proxy.close()


@pytest.mark.parametrize("confirm", [True, False], ids=["confirm_publish", "default"])
def test_send_task_waits_for_the_confirm_exactly_when_celery_s_does(confirm: bool) -> None:
    require("rabbitmq")
    celery_python = str(celery_env.ensure(quiet=True))
    theirs = _observe(celery_python, "celery", confirm)
    ours = _observe(sys.executable, "celeriac", confirm)
    assert ours == theirs
    assert theirs == {"returned while unanswered": not confirm, "queued": 2}
