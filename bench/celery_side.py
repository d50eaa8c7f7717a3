"""Celery's side of bench/sdk.py; run with the Celery 5.7 venv's python (interop/celery_env.py).

    python bench/celery_side.py publish|roundtrip BROKER BACKEND QUEUE COUNT [PAYLOAD_BYTES]

Prints one JSON line with the measured figures.
"""

import json
import statistics
import sys
import time

from celery import Celery


def make_app(broker, backend):
    app = Celery("bench", broker=broker, backend=backend)
    app.conf.task_ignore_result = False

    @app.task(name="bench.noop", ignore_result=True)
    def noop(*args):
        return None

    @app.task(name="bench.add")
    def add(x, y):
        return x + y

    return app


def main():
    mode, broker, backend, queue, count = sys.argv[1:6]
    count = int(count)
    payload = ("x" * int(sys.argv[6]),) if len(sys.argv) > 6 and int(sys.argv[6]) else ()
    app = make_app(broker, backend)
    noop, add = app.tasks["bench.noop"], app.tasks["bench.add"]
    if mode == "publish":
        noop.apply_async(payload, queue=queue)  # connect and declare before timing
        start = time.perf_counter()
        for _ in range(count):
            noop.apply_async(payload, queue=queue)
        rate = count / (time.perf_counter() - start)
        print(json.dumps({"publish": rate, "rate": rate}))
    elif mode == "roundtrip":
        add.apply_async((1, 1), queue=queue).get(timeout=30)
        times = []
        for _ in range(count):
            start = time.perf_counter()
            add.apply_async((1, 1), queue=queue).get(timeout=30)
            times.append(time.perf_counter() - start)
        q = statistics.quantiles(times, n=100, method="inclusive")
        print(json.dumps({"p50": q[49], "p90": q[89], "p99": q[98]}))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
