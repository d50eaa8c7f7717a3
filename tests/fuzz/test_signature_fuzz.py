"""Signatures under fuzzing: task messages whose callbacks, errbacks, chain and chord hold
drawn signatures (valid, nested, of wrong types, huge or deep) run through the real worker
loop. The message itself is settled once (it ran, at most ``worker_max_deliveries`` times, or
was dead-lettered with a reason), what it sends on settles too, the worker stays alive and
runs a normal task afterwards, and its memory stays bounded.

Budget: a fifth of ``CELERIAC_FUZZ_EXAMPLES`` on the memory transport (see
test_worker_fuzz.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz.canvas_strategies import signature_messages
from tests.fuzz.harness import Harness, budget, fuzz, make_harness


@pytest.fixture(params=["memory"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield from make_harness(request, tmp_path)


def test_signatures_through_the_worker_loop(harness: Harness) -> None:
    fuzz(harness, budget(0.2), signature_messages)
    # The follow-ups ran too: a valid callback or chain step is sent on and runs.
    assert sum(harness.runs.values()) > harness.seen.get("ran", 0), harness.seen
