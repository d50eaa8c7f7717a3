"""celeriac.contrib.testing.worker.start_worker, as Celery's embedded test worker."""

from __future__ import annotations

import uuid

import pytest

from celeriac import App
from celeriac.contrib.testing.worker import start_worker


def test_start_worker_runs_tasks_for_the_block() -> None:
    name = uuid.uuid4().hex[:8]
    app = App("embedded", broker=f"memory://{name}", backend=f"memory://{name}")

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, perform_ping_check=False) as worker:
        assert add.delay(2, 3).get(timeout=10) == 5
    assert worker is not None
    with pytest.raises(TypeError, match="pool_cls"), start_worker(app, pool_cls="x"):
        pass
