"""How long a message takes from ``delay()`` returning to a consumer having it (issue 23): a
lone call, and the second of two back-to-back calls (the one a connection that coalesces its
writes may hold until RabbitMQ acknowledged the first).

    python -m bench.publish_latency URL [--count 150] [--no-coalesce]

The consumer is a plain pika connection of its own in a thread of this process (one clock);
``--no-coalesce`` sets the transport option ``coalesce_writes=False``, to compare."""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from celeriac import App
from celeriac.transports.amqp.connection import connect

QUEUE = "bench-publish-latency"


def _consume(
    url: str, got: dict[str, float], ready: threading.Event, stop: threading.Event
) -> None:
    conn = connect(url)
    ch = conn.channel()

    def on_message(channel: object, method: object, props: object, body: bytes) -> None:
        got[props.headers["id"]] = time.perf_counter()  # type: ignore[attr-defined]
        ch.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]

    ch.basic_consume(QUEUE, on_message)
    ready.set()
    while not stop.is_set():
        conn.process_data_events(time_limit=0.01)
    conn.close()


def _wait_for(got: dict[str, float], *ids: str) -> None:
    deadline = time.monotonic() + 10
    while not all(i in got for i in ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"the consumer did not get {ids} within 10 s")
        time.sleep(0.0002)


def measure(url: str, count: int, coalesce: bool) -> dict[str, list[float]]:
    """Seconds from ``delay()`` returning to the consumer's callback, per case."""
    app = App(
        "latency",
        broker=url,
        task_default_queue=QUEUE,
        broker_transport_options={"coalesce_writes": coalesce},
    )

    @app.task(name="bench.publish_latency.noop", ignore_result=True)
    def noop(*args: object) -> None:
        return None

    noop.delay(0)
    app.flush()
    app.producer().purge(QUEUE)
    got: dict[str, float] = {}
    ready, stop = threading.Event(), threading.Event()
    consumer = threading.Thread(target=_consume, args=(url, got, ready, stop), daemon=True)
    consumer.start()
    ready.wait(10)
    out: dict[str, list[float]] = {"alone": [], "second of two": []}
    try:
        for i in range(count):
            lone = noop.delay(i)
            sent = time.perf_counter()
            _wait_for(got, lone.id)
            out["alone"].append(got[lone.id] - sent)
            first, second = noop.delay(i), noop.delay(i)
            sent = time.perf_counter()
            _wait_for(got, first.id, second.id)
            out["second of two"].append(got[second.id] - sent)
            time.sleep(0.005)
    finally:
        stop.set()
        consumer.join(10)
        app.flush()
        app.producer().purge(QUEUE)
        app.close()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.publish_latency")
    p.add_argument("url")
    p.add_argument("--count", type=int, default=150)
    p.add_argument("--no-coalesce", action="store_true")
    args = p.parse_args(argv)
    out = measure(args.url, args.count, coalesce=not args.no_coalesce)
    label = "coalesce_writes=False" if args.no_coalesce else "default"
    for case, values in out.items():
        ms = sorted(v * 1000 for v in values)
        p90 = ms[int(len(ms) * 0.9)]
        print(
            f"{label}, {case}: p50 {statistics.median(ms):.2f} ms, p90 {p90:.2f} ms, "
            f"max {ms[-1]:.2f} ms"
        )


if __name__ == "__main__":
    main()
