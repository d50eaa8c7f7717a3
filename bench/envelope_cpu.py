"""CPU time of reading one delivery on the Redis and Kafka consumers' path (issue 23).

    python -m bench.envelope_cpu [--rounds 15] [--only readers,kafka,redis]

``readers``: one call of each envelope reader on a Celeriac envelope of a no-op task and on
Celery's captured one (``json_envelope.unpack_wire``; ``unpack_consumed`` and the Kafka record
readers where the tree has them). ``kafka``: the Kafka consumer's own loop over synthetic
records of that task (``QueueReader._deliveries`` then ``settle``; 10 polls of 1,000 a round,
the garbage collector on, kafka-python imported).
``redis``: the Redis consumer's fetch and ack with the scripts answered by canned replies of
200 messages (one connection to ``CELERIAC_TEST_REDIS_URL`` at start, no traffic after).

Every figure is ``time.process_time()`` per item, min and median over the rounds; the cases
run in turns within each round. A full collection (it walks the whole heap, ~50-90 ms here)
lands in whichever case crosses its threshold, so the medians of cases run together move with
it: run one case per process (``--only``), and read the count printed. To compare two trees,
run this file under each tree's interpreter (``/work/main/.venv/bin/python
bench/envelope_cpu.py``), in turns.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celeriac.protocol import encode_task, new_task_message
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.envelopes import kafka as kafka_envelope

ROOT = Path(__file__).resolve().parents[1]
CELERY_ENVELOPE = json.loads((ROOT / "protocol/vectors/captured/redis/countdown.json").read_text())[
    "wire"
]["payload"].encode()
WIRE = encode_task(new_task_message("bench.noop", (1, 2), origin="gen1@host"))
ENVELOPE = json_envelope.pack_wire(WIRE, routing_key="celery")
RECORD = kafka_envelope.pack_wire(WIRE, "celery")


def _per_call(call: Callable[[], object], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - start) / n * 1e6


def readers() -> dict[str, Callable[[], float]]:
    """Microseconds of one reader call, by reader."""
    value, headers = RECORD.value, RECORD.headers
    cases: dict[str, Callable[[], object]] = {
        "unpack_wire (ours)": lambda: json_envelope.unpack_wire(ENVELOPE),
        "unpack_wire (Celery's)": lambda: json_envelope.unpack_wire(CELERY_ENVELOPE),
        "kafka unpack_record": lambda: kafka_envelope.unpack_record(value, headers),
    }
    consumed = getattr(json_envelope, "unpack_consumed", None)
    if consumed is not None:
        cases["unpack_consumed (ours)"] = lambda: consumed(ENVELOPE)
        kafka_consumed = kafka_envelope.unpack_consumed  # type: ignore[attr-defined,unused-ignore]
        cases["kafka unpack_consumed"] = lambda: kafka_consumed(value, headers)
    return {name: _timed(call, 20_000) for name, call in cases.items()}


def _timed(call: Callable[[], object], n: int) -> Callable[[], float]:
    return lambda: _per_call(call, n)


def kafka_loop() -> Callable[[], float]:
    """Microseconds per record of the Kafka consumer's deliveries and settle."""
    import kafka  # noqa: F401  (its modules are the heap a full collection walks)
    from kafka.consumer.fetcher import ConsumerRecord
    from kafka.structs import TopicPartition

    from celeriac.transports.kafka.consumer import QueueReader
    from celeriac.transports.kafka.offsets import Ledger

    tp = TopicPartition("celery", 0)
    reader = QueueReader.__new__(QueueReader)  # the reading half alone: no client, no group
    reader.queue, reader.lock, reader.ledger = "celery", threading.Lock(), Ledger()
    reader.commit = lambda **_: True  # type: ignore[method-assign]
    reader._maybe_hand_over = lambda: None  # type: ignore[method-assign]
    ledger = reader.ledger.get(tp)
    offset = 0

    def records(n: int) -> list[Any]:
        nonlocal offset
        offset += n
        return [
            ConsumerRecord("celery", 0, -1, o, 0, 0, bytes(RECORD.key or b""),
                           bytes(RECORD.value), [tuple(h) for h in RECORD.headers],
                           None, 36, len(RECORD.value), 60)
            for o in range(offset - n, offset)
        ]  # fmt: skip

    def once() -> float:
        polls = [records(1000) for _ in range(10)]
        start = time.process_time()
        for batch in polls:
            ledger.hand_out_many([r.offset for r in batch])
            reader.settle(reader._deliveries(tp, ledger, batch))
        return (time.process_time() - start) / 10_000 * 1e6

    return once


def redis_loop() -> Callable[[], float]:
    """Microseconds per message of the Redis consumer's fetch and ack, scripts answered."""
    from celeriac.transports import resolve

    url = os.environ.get("CELERIAC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    transport: Any = resolve(url)(url)
    transport.connect()
    consumer: Any = transport.consumer(["bench.envelope_cpu"], prefetch=10**9)
    consumer._renew_at = float("inf")  # renewals would run the real script
    transport.settle_script = lambda keys, args: None
    group = consumer._groups[0]
    count = 0

    def reply() -> list[Any]:
        nonlocal count
        out: list[Any] = [0, 0]
        for _ in range(200):
            count += 1
            out += [f"tag-{count}".encode(), 1, ENVELOPE]
        return out

    def once() -> float:
        replies = iter([reply() for _ in range(25)])
        transport.fetch_script = lambda keys, args: next(replies)
        start = time.process_time()
        for _ in range(25):
            consumer.ack(consumer._fetch_once(group, 200, False, 0.0))
        return (time.process_time() - start) / 5000 * 1e6

    return once


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", default="readers,kafka,redis")
    args = parser.parse_args(argv)
    wanted = args.only.split(",")
    cases: dict[str, Callable[[], float]] = {}
    if "readers" in wanted:
        cases.update(readers())
    if "kafka" in wanted:
        cases["kafka consumer, per record"] = kafka_loop()
    if "redis" in wanted:
        cases["redis consumer, per message"] = redis_loop()
    figures: dict[str, list[float]] = {name: [] for name in cases}
    full: dict[str, int] = dict.fromkeys(cases, 0)
    for _ in range(args.rounds):
        for name, case in cases.items():
            before = gc.get_stats()[2]["collections"]
            figures[name].append(case())
            full[name] += gc.get_stats()[2]["collections"] - before
    for name, values in figures.items():
        print(
            f"{name:30} min {min(values):6.2f} us   median {statistics.median(values):6.2f} us"
            f"   full collections {full[name]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
