"""Celery's side of bench/sdk.py; run with the Celery 5.7 venv's python (interop/celery_env.py).

    python bench/celery_side.py publish|roundtrip BROKER BACKEND QUEUE COUNT

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
    def noop():
        return None

    @app.task(name="bench.add")
    def add(x, y):
        return x + y

    return app


def main():
    mode, broker, backend, queue, count = sys.argv[1:6]
    count = int(count)
    app = make_app(broker, backend)
    noop, add = app.tasks["bench.noop"], app.tasks["bench.add"]
    if mode == "publish":
        noop.apply_async(queue=queue)  # connect and declare before timing
        start = time.perf_counter()
        for _ in range(count):
            noop.apply_async(queue=queue)
        print(json.dumps({"publish": count / (time.perf_counter() - start)}))
    elif mode == "roundtrip":
        add.apply_async((1, 1), queue=queue).get(timeout=30)
        times = []
        for _ in range(count):
            start = time.perf_counter()
            add.apply_async((1, 1), queue=queue).get(timeout=30)
            times.append(time.perf_counter() - start)
        q = statistics.quantiles(times, n=100)
        print(json.dumps({"p50": q[49], "p90": q[89], "p99": q[98]}))


if __name__ == "__main__":
    main()
