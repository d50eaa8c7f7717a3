"""Fixtures for the transport contract suite: one real broker per transport, fresh queues."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac.transports import QueueSpec, Transport, resolve
from tests.brokers import AMQP_URL, KAFKA_URL, REDIS_URL, SQS_URL, ZOOKEEPER_URL, require

#: Every transport the suite runs against: each one that has landed. Redis and RabbitMQ join
#: with their transports, then SQS, Kafka and ZooKeeper.
TRANSPORTS: tuple[str, ...] = ("memory", "sqlite", "redis", "amqp", "sqs", "kafka", "zookeeper")
#: Transports whose queues several processes can share (the SIGKILL test needs a second one).
SHARED: tuple[str, ...] = ("sqlite", "redis", "amqp", "sqs", "kafka", "zookeeper")
#: Transports with a broker process the suite can restart (name -> scripts/services name).
RESTARTABLE: dict[str, str] = {
    "redis": "redis",
    "amqp": "rabbitmq",
    "sqs": "sqs",
    "kafka": "kafka",
    "zookeeper": "zookeeper",
}
_SERVICE = {"sqs": "sqs", "kafka": "kafka", "zookeeper": "zookeeper"}
# A transport under development joins the suite with CELERIAC_CONTRACT_EXTRA=name[,name].
# "rediscluster" runs it on the Redis Cluster of `scripts/services cluster up rediscluster`
# (tests/clusters/test_redis_cluster.py does so); that one is not restarted as a broker.
for _extra in filter(None, os.environ.get("CELERIAC_CONTRACT_EXTRA", "").split(",")):
    if _extra not in TRANSPORTS:
        TRANSPORTS += (_extra,)
        SHARED += (_extra,)
        if _extra != "rediscluster":
            RESTARTABLE[_extra] = _SERVICE.get(_extra, _extra)
#: The Redis Cluster the contract runs on with CELERIAC_CONTRACT_EXTRA=rediscluster.
REDIS_CLUSTER_URL = os.environ.get(
    "CELERIAC_TEST_REDIS_CLUSTER_URL", "redis+cluster://127.0.0.1:17101,127.0.0.1:17102/"
)


def url_for(name: str, tmp_path: Path) -> str:
    """The URL the suite uses for transport ``name``."""
    if name == "memory":
        return f"memory://contract-{uuid.uuid4().hex[:8]}"
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'broker.db'}"
    if name == "redis":
        require("redis")
        return REDIS_URL
    if name == "amqp":
        require("rabbitmq")
        return AMQP_URL
    if name == "sqs":
        require("sqs")
        return SQS_URL
    if name == "kafka":
        require("kafka")
        return KAFKA_URL
    if name == "zookeeper":
        require("zookeeper")
        return f"{ZOOKEEPER_URL}/contract-{uuid.uuid4().hex[:8]}"
    if name == "rediscluster":
        return REDIS_CLUSTER_URL
    raise AssertionError(name)


MakeTransport = Callable[..., Transport]


@pytest.fixture(params=TRANSPORTS)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(name: str, tmp_path: Path) -> str:
    return url_for(name, tmp_path)


@pytest.fixture
def make_transport(url: str) -> Iterator[MakeTransport]:
    """Open (and connect) transports on the test's broker; all are closed at teardown."""
    opened: list[Transport] = []

    def make(**options: Any) -> Transport:
        transport = resolve(url)(url, **options)
        transport.connect()
        opened.append(transport)
        return transport

    yield make
    for transport in reversed(opened):
        transport.close()


@pytest.fixture
def transport(make_transport: MakeTransport) -> Transport:
    return make_transport()


def new_queue(transport: Transport, **spec: Any) -> str:
    """Declare a queue with a name no other test uses."""
    name = f"contract.{uuid.uuid4().hex[:12]}"
    transport.declare_queue(QueueSpec(name, **spec))
    return name


@pytest.fixture
def queue(transport: Transport) -> str:
    return new_queue(transport)


def inject_raw(name: str, url: str, queue: str, raw: bytes) -> None:
    """Put bytes that are not a valid envelope where ``queue``'s messages live (SPEC.md §6)."""
    if name == "redis":
        import redis

        client = redis.Redis.from_url(url)
        client.lpush(queue, raw)
        client.close()
    elif name == "amqp":
        import pika

        from tests.brokers import amqp_params

        p = amqp_params()
        params = pika.ConnectionParameters(
            host=p.host, port=p.port, virtual_host=p.vhost,
            credentials=pika.PlainCredentials(p.user, p.password),
        )  # fmt: skip
        with pika.BlockingConnection(params) as conn:
            # No content type: the message is raw data, not an envelope we can read.
            conn.channel().basic_publish("", queue, raw, pika.BasicProperties(headers={"x": 1}))
    elif name == "sqlite":
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            db.execute(
                "INSERT INTO messages (queue, priority, available_at, payload, delivery_tag) "
                "VALUES (?, 0, 0, ?, ?)",
                (queue, raw, str(uuid.uuid4())),
            )
    else:
        # Transports that land later bring tests/transports/raw_<name>.py with inject(url, q, raw).
        importlib.import_module(f"tests.transports.raw_{name}").inject(url, queue, raw)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
