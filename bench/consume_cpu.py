"""Rate and CPU per record of a transport's consume loop, beside the bare kafka-python loop's.

    python -m bench.consume_cpu [URL] [--count 50000] [--rounds 3] [--bare] [--freeze]

URL defaults to ``CELERIAC_TEST_KAFKA_URL``. Each round publishes ``count`` no-op task messages
to a fresh queue with ``publish_many``, then consumes them as ``python -m bench.transports``
does (``fetch(1000)`` then ``ack`` of the batch, prefetch 2,000), timing the consume alone:
wall clock for the rate, ``time.process_time()`` (every thread of the process: the caller's and
the client's I/O thread) for the CPU. ``--bare`` also runs ``bench.raw_kafka`` in each round,
records with the transport's key and headers, so its rate and CPU are taken in the same turn.
``--freeze``: ``gc.freeze()`` once the clients' modules are loaded, as ``celeriac worker`` does
after start-up, so full collections walk only what came after (both loops run frozen).
To compare two trees, run this file under each tree's interpreter, in turns.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

from celeriac.protocol import encode_task, new_task_message
from celeriac.transports import QueueSpec, resolve

URL = os.environ.get("CELERIAC_TEST_KAFKA_URL", "kafka://127.0.0.1:19092")
FETCH = 1000
BATCH = 500


def consume_once(url: str, count: int) -> tuple[float, float]:
    """(records per second, microseconds of process CPU per record) of one consume."""
    transport = resolve(url)(url)
    transport.connect()
    try:
        queue = f"bench.cpu.{uuid.uuid4().hex[:8]}"
        transport.declare_queue(QueueSpec(queue))
        message = encode_task(new_task_message("bench.noop", (1, 2)))
        for i in range(0, count, BATCH):
            transport.publish_many(queue, [message] * min(BATCH, count - i))
        received = 0
        with transport.consumer([queue], prefetch=FETCH * 2) as consumer:
            start, cpu = time.perf_counter(), time.process_time()
            while received < count:
                batch = consumer.fetch(FETCH, timeout=5)
                if not batch:
                    raise RuntimeError(f"{url}: only {received} of {count} messages came back")
                consumer.ack(batch)
                received += len(batch)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        transport.purge(queue)
        return count / seconds, cpu / count * 1e6
    finally:
        transport.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default=URL)
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--freeze", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import raw_kafka

    if args.freeze:
        resolve(args.url)  # imports the transport's client
        gc.collect()
        gc.freeze()

    rows: list[tuple[float, float, float, float]] = []
    for n in range(args.rounds):
        rate, cpu = consume_once(args.url, args.count)
        bare_rate = bare_cpu = float("nan")
        if args.bare:
            _, bare_rate = raw_kafka.raw_kafka(args.count, 801, headers=True)
            bare_cpu = raw_kafka.LAST_CPU[0] * 1e6
        rows.append((rate, cpu, bare_rate, bare_cpu))
        print(
            f"round {n + 1}: transport {rate:,.0f}/s {cpu:.1f} us CPU a record; "
            f"bare loop {bare_rate:,.0f}/s {bare_cpu:.1f} us; transport / bare "
            f"{rate / bare_rate:.0%}",
            flush=True,
        )
    medians = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(
        f"medians: transport {medians[0]:,.0f}/s {medians[1]:.1f} us; "
        f"bare {medians[2]:,.0f}/s {medians[3]:.1f} us",
        flush=True,
    )


if __name__ == "__main__":
    main()
