"""Where the test brokers live, and a check that fails (never skips) when one is missing.

The brokers are started by ``scripts/services up`` on 127.0.0.1; ``scripts/services env``
prints the same URLs as ``export`` lines.  Override any of them with the environment
variables below.

A test that needs a broker calls :func:`require` (or uses the ``*_url`` fixtures built on
it).  When the broker does not answer, the test *fails* with the broker's name and the
command that starts it: a missing broker must never turn into a silently skipped test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.waiting import eventually

SERVICES = "scripts/services"


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


REDIS_URL = _env("CELERIAC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = _env("CELERIAC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
ZOOKEEPER_URL = _env("CELERIAC_TEST_ZOOKEEPER_URL", "zookeeper://127.0.0.1:2181")
KAFKA_URL = _env("CELERIAC_TEST_KAFKA_URL", "kafka://127.0.0.1:19092")
SQS_URL = _env("CELERIAC_TEST_SQS_URL", "sqs://x:x@127.0.0.1:9324")
SQS_ENDPOINT = _env("CELERIAC_TEST_SQS_ENDPOINT", "http://127.0.0.1:9324")
SQS_REGION = _env("CELERIAC_TEST_SQS_REGION", "elasticmq")


@dataclass(frozen=True)
class Broker:
    name: str  # the name scripts/services knows it by
    url: str

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        if port is None:
            raise ValueError(f"{self.name} URL {self.url!r} has no port")
        return port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


BROKERS: dict[str, Broker] = {
    "redis": Broker("redis", REDIS_URL),
    "rabbitmq": Broker("rabbitmq", AMQP_URL),
    "zookeeper": Broker("zookeeper", ZOOKEEPER_URL),
    "kafka": Broker("kafka", KAFKA_URL),
    "sqs": Broker("sqs", SQS_ENDPOINT),
}


@dataclass(frozen=True)
class AmqpParams:
    host: str
    port: int
    user: str
    password: str
    vhost: str


def amqp_params(url: str = AMQP_URL) -> AmqpParams:
    """Split a Celery/Kombu-style AMQP URL: ``amqp://u:p@h:5672//`` means vhost ``/``.

    (pika's own URL parser reads ``//`` as the empty vhost; use these fields instead.)
    """
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return AmqpParams(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5672,
        user=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        vhost=unquote(path) or "/",
    )


def sqs_client_kwargs() -> dict[str, str]:
    """Keyword arguments for ``boto3.client("sqs", **...)`` against the test ElasticMQ."""
    parts = urlsplit(SQS_URL)
    return {
        "endpoint_url": SQS_ENDPOINT,
        "region_name": SQS_REGION,
        "aws_access_key_id": parts.username or "x",
        "aws_secret_access_key": parts.password or "x",
    }


def _connect_error(broker: Broker, timeout: float) -> str | None:
    try:
        with socket.create_connection((broker.host, broker.port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{exc.strerror or exc}"


def require(name: str, timeout: float = 5.0) -> Broker:
    """Return the broker, or fail the calling test if nothing accepts connections on it.

    Retries for up to ``timeout`` seconds (a broker that is still starting gets a chance),
    then calls :func:`pytest.fail` naming the broker and the command that starts it.
    """
    broker = BROKERS[name]
    errors: list[str] = []

    def reachable() -> bool:
        error = _connect_error(broker, timeout=min(2.0, timeout))
        if error is not None:
            errors.append(error)
        return error is None

    try:
        eventually(reachable, timeout, f"a connection to {name}", interval=0.2)
    except AssertionError:
        pytest.fail(
            f"{name} broker is not reachable at {broker.address} ({errors[-1]}). "
            f"Start it with `{SERVICES} up {name}` (check it with `{SERVICES} status {name}`).",
            pytrace=False,
        )
    return broker


def unique(prefix: str) -> str:
    """A name no other test run uses (queues, topics, znodes)."""
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns()}"


def redis_db(db: int) -> str:
    """The test Redis with database ``db`` of the caller's own: its queues and its broadcasts
    (Kombu's fanout channels carry the database number) meet no other test's."""
    require("redis")
    parts = urlsplit(REDIS_URL)
    return parts._replace(path=f"/{db}").geturl()


def amqp_vhost(vhost: str) -> str:
    """The test RabbitMQ with virtual host ``vhost`` of the caller's own (created if missing, the
    URL's user given every permission there): its queues and fanout exchanges meet no other
    test's. Through ``scripts/services rabbitmqctl``, which runs the node's own rabbitmqctl with
    the node's environment (Debian's /usr/sbin wrapper would start a stray epmd)."""
    require("rabbitmq")
    params = amqp_params()
    root = Path(__file__).resolve().parent.parent
    ctl = [str(root / SERVICES), "rabbitmqctl"]
    listed = subprocess.run([*ctl, "list_vhosts", "-q"], capture_output=True, text=True, timeout=90)
    if vhost not in listed.stdout.split():
        created = subprocess.run([*ctl, "add_vhost", vhost], capture_output=True, timeout=90)
        # Another run may have created it between the two calls: only its absence is an error.
        if created.returncode != 0 and b"already" not in created.stdout + created.stderr:
            pytest.fail(f"rabbitmqctl add_vhost {vhost}: {created.stderr.decode()[-500:]}")
    granted = subprocess.run(
        [*ctl, "set_permissions", "-p", vhost, params.user, ".*", ".*", ".*"],
        capture_output=True,
        timeout=90,
    )
    if granted.returncode != 0:
        pytest.fail(f"rabbitmqctl set_permissions -p {vhost}: {granted.stderr.decode()[-500:]}")
    parts = urlsplit(AMQP_URL)
    return parts._replace(path="/" + quote(vhost, safe="")).geturl()
