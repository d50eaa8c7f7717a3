"""The worker loop under structure-aware fuzzing: hostile messages of every kind, each sent
through the real worker loop, must leave the worker alive and be settled exactly once (ran,
dead-lettered with a reason, revoked, or parked for its ETA); a normal task runs after them,
and the worker's memory stays bounded.

Budget: ``CELERIAC_FUZZ_EXAMPLES`` examples on the memory transport (default 300, fixed seed,
as CI runs it) and a fifth of that on Redis and SQLite; for a long run:
``CELERIAC_FUZZ_EXAMPLES=5000 CELERIAC_FUZZ_RANDOM=1 pytest tests/fuzz``. The other files
here take their shares of the same budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz.harness import BUDGET, Harness, budget, fuzz, make_harness


@pytest.fixture(params=["memory"])
def memory_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield from make_harness(request, tmp_path)


@pytest.fixture(params=["redis", "sqlite"])
def broker_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield from make_harness(request, tmp_path)


def test_hostile_messages_through_the_worker_loop(memory_harness: Harness) -> None:
    fuzz(memory_harness, BUDGET)


def test_a_sample_on_real_brokers(broker_harness: Harness) -> None:
    fuzz(broker_harness, budget(0.2))
