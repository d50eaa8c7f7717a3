"""Dramatiq's side of the benchmark (runs in the Dramatiq venv, see bench/peers/env.py).

Worker: ``dramatiq bench.peers.dramatiq_app -p P -t T -Q QUEUE``; client:
``python -m bench.peers.dramatiq_app publish|roundtrip COUNT [PAYLOAD_BYTES]`` or
``... sleep COUNT SECONDS DONE_KEY`` (preloads sleep tasks, bench/peers/done.py). Broker from
``BENCH_BROKER``, results (Redis) from ``BENCH_BACKEND``, queue from ``BENCH_QUEUE``.
"""

import json
import os
import statistics
import sys
import time

import dramatiq
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from bench.peers.done import count_done

BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_QUEUE", "default")
if BROKER.startswith("redis"):
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=BROKER)
else:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=BROKER[:-1] + "%2F" if BROKER.endswith("//") else BROKER)
BACKEND = os.environ.get("BENCH_BACKEND") or "redis://127.0.0.1:6379/4"
broker.add_middleware(Results(backend=RedisBackend(url=BACKEND)))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_noop", max_retries=0)
def noop(*args):
    return None


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_add", store_results=True, max_retries=0)
def add(x, y):
    return x + y


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_sleep", max_retries=0)
def sleep(seconds: float, done: str = "") -> None:
    time.sleep(seconds)
    count_done(done)


def main():
    mode, count = sys.argv[1], int(sys.argv[2])
    if mode == "sleep":
        for _ in range(count):
            sleep.send(float(sys.argv[3]), sys.argv[4])
        print(json.dumps({}), flush=True)
        return
    payload = ("x" * int(sys.argv[3]),) if len(sys.argv) > 3 and int(sys.argv[3]) else ()
    out = {}
    if mode == "publish":
        noop.send(*payload)
        t = time.perf_counter()
        for _ in range(count):
            noop.send(*payload)
        out["rate"] = count / (time.perf_counter() - t)
    elif mode == "roundtrip":
        add.send(1, 1).get_result(block=True, timeout=30_000)
        times = []
        for _ in range(count):
            t = time.perf_counter()
            add.send(1, 1).get_result(block=True, timeout=30_000)
            times.append(time.perf_counter() - t)
        q = statistics.quantiles(times, n=100, method="inclusive")
        out = {"p50": q[49], "p90": q[89], "p99": q[98]}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
