"""Transport throughput: 50,000 small messages through each transport's API, beside the raw
broker figure measured in the same run.

    python -m bench.transports [--count 50000] [--only redis,amqp,sqs,kafka,zookeeper,...]

Raw figures: ``redis-benchmark`` LPUSH/RPOP with pipelining (same payload size); a bare pika loop
(publish the same body and headers; consume with prefetch 1,000 and batched acks); bare boto3
(SendMessageBatch; ReceiveMessage + DeleteMessageBatch), kafka-python (produce, flush; consume)
and kazoo (multi create; get + multi delete) loops. Needs the brokers of ``scripts/services up``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from celeriac.protocol import encode_task, new_task_message
from celeriac.protocol.envelopes import amqp as amqp_envelope
from celeriac.protocol.envelopes import json_envelope
from celeriac.transports import QueueSpec, Transport, resolve

from .raw_kafka import raw_kafka
from .raw_sqs import raw_sqs
from .raw_zookeeper import raw_zookeeper

REDIS_URL = os.environ.get("CELERIAC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("CELERIAC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
SQS_URL = os.environ.get("CELERIAC_TEST_SQS_URL", "sqs://x:x@127.0.0.1:9324")
KAFKA_URL = os.environ.get("CELERIAC_TEST_KAFKA_URL", "kafka://127.0.0.1:19092")
ZOOKEEPER_URL = os.environ.get("CELERIAC_TEST_ZOOKEEPER_URL", "zookeeper://127.0.0.1:2181")
BATCH = 500
#: Messages per fetch when consuming: the bare loops' poll size (kafka-python max_records=1000).
FETCH = 1000


@dataclass
class Row:
    transport: str
    publish: float
    publish_many: float
    consume: float
    raw_publish: float | None = None
    raw_consume: float | None = None
    raw_label: str = ""


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def measure_transport(url: str, count: int) -> tuple[float, float, float]:
    """(publish one by one, publish_many, consume in batches) messages per second."""
    transport: Transport = resolve(url)(url)
    transport.connect()
    try:
        queue = f"bench.{uuid.uuid4().hex[:8]}"
        transport.declare_queue(QueueSpec(queue))
        message = encode_task(new_task_message("bench.noop", (1, 2)))
        one_by_one = min(count, 10_000)
        start = time.perf_counter()
        for _ in range(one_by_one):
            transport.publish(queue, message)
        publish = _rate(one_by_one, time.perf_counter() - start)
        transport.purge(queue)
        start = time.perf_counter()
        for i in range(0, count, BATCH):
            transport.publish_many(queue, [message] * min(BATCH, count - i))
        publish_many = _rate(count, time.perf_counter() - start)
        received = 0
        start = time.perf_counter()
        with transport.consumer([queue], prefetch=FETCH * 2) as consumer:
            while received < count:
                batch = consumer.fetch(FETCH, timeout=5)
                if not batch:
                    raise RuntimeError(f"{url}: only {received} of {count} messages came back")
                consumer.ack(batch)
                received += len(batch)
        consume = _rate(count, time.perf_counter() - start)
        transport.purge(queue)
        return publish, publish_many, consume
    finally:
        transport.close()


def raw_redis(count: int, payload: int) -> tuple[float, float]:
    """redis-benchmark LPUSH and RPOP, pipelined 100 deep, with our envelope's size."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        raise RuntimeError("redis-benchmark is missing: apt-get install redis-tools")
    host, port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].split(":")
    out = subprocess.run(
        [exe, "-h", host, "-p", port, "-n", str(count), "-P", "100", "-d", str(payload),
         "-t", "lpush,rpop", "--csv"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    rates = {}
    for line in out.splitlines()[1:]:
        cells = [c.strip('"') for c in line.split(",")]
        rates[cells[0].split()[0]] = float(cells[1])
    return rates["LPUSH"], rates["RPOP"]


def raw_pika(count: int) -> tuple[float, float]:
    """A bare pika loop with the same body and Celery's headers in the header table."""
    import pika

    from celeriac.transports.amqp.connection import parameters

    am = amqp_envelope.pack(new_task_message("bench.noop", (1, 2)))
    params = parameters(AMQP_URL)
    queue = f"bench.raw.{uuid.uuid4().hex[:8]}"
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True)
        props = pika.BasicProperties(**am.properties)
        start = time.perf_counter()
        for _ in range(count):
            ch.basic_publish("", queue, am.body, props)
        ch.queue_declare(queue, durable=True)  # a round trip: everything before it arrived
        publish = _rate(count, time.perf_counter() - start)
        ch.basic_qos(prefetch_count=1000)
        received = 0
        start = time.perf_counter()
        for method, _props, _body in ch.consume(queue, inactivity_timeout=5):
            if method is None:
                break
            received += 1
            if received % 500 == 0 or received == count:
                ch.basic_ack(method.delivery_tag, multiple=True)
            if received == count:
                break
        consume = _rate(received, time.perf_counter() - start)
        ch.cancel()
        ch.queue_delete(queue)
    return publish, consume


def payload_size() -> int:
    """Bytes of the JSON envelope of the benchmark's no-op message."""
    return len(json_envelope.pack(new_task_message("bench.noop", (1, 2))))


def url_for(name: str) -> str:
    """The broker URL of a transport with a server (a fresh ZooKeeper chroot each time)."""
    if name == "zookeeper":
        return f"{ZOOKEEPER_URL}/bench-{uuid.uuid4().hex[:8]}"
    return {"redis": REDIS_URL, "amqp": AMQP_URL, "sqs": SQS_URL, "kafka": KAFKA_URL}[name]


def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:.0%}" if b else "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--only", default="memory,sqlite,redis,amqp,sqs,kafka,zookeeper")
    args = parser.parse_args(argv)
    wanted = args.only.split(",")
    payload = len(json_envelope.pack(new_task_message("bench.noop", (1, 2))))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        urls: dict[str, str] = {
            "memory": "memory://bench",
            "sqlite": f"sqlite:///{tmp}/bench.db",
            "redis": REDIS_URL,
            "amqp": AMQP_URL,
            "sqs": SQS_URL,
            "kafka": KAFKA_URL,
            "zookeeper": f"{ZOOKEEPER_URL}/bench-{uuid.uuid4().hex[:8]}",
        }
        raws: dict[str, tuple[str, Callable[[], tuple[float, float]]]] = {
            "redis": (
                "redis-benchmark -P 100",
                lambda: raw_redis(max(args.count, 100_000), payload),
            ),
            "amqp": ("bare pika loop", lambda: raw_pika(args.count)),
            "sqs": ("bare boto3 loop", lambda: raw_sqs(args.count, payload)),
            "kafka": ("bare kafka-python loop", lambda: raw_kafka(args.count, payload)),
            "zookeeper": ("bare kazoo loop", lambda: raw_zookeeper(args.count, payload)),
        }
        for name in wanted:
            row = Row(name, *measure_transport(urls[name], args.count))
            if name in raws:
                row.raw_label, measure = raws[name]
                row.raw_publish, row.raw_consume = measure()
            rows.append(row)
    table = Table(title=f"Transport throughput, {args.count:,} messages of {payload} bytes (msg/s)")
    for column in (
        "transport",
        "publish",
        "publish_many",
        "consume",
        "raw publish",
        "raw consume",
        "publish_many / raw",
        "consume / raw",
        "raw is",
    ):
        table.add_column(column, justify="right" if column != "transport" else "left")  # fmt: skip
    for r in rows:
        table.add_row(
            r.transport, f"{r.publish:,.0f}", f"{r.publish_many:,.0f}", f"{r.consume:,.0f}",
            f"{r.raw_publish:,.0f}" if r.raw_publish else "-",
            f"{r.raw_consume:,.0f}" if r.raw_consume else "-",
            _ratio(r.publish_many, r.raw_publish), _ratio(r.consume, r.raw_consume), r.raw_label,
        )  # fmt: skip
    Console(width=170).print(table)


if __name__ == "__main__":
    main()
