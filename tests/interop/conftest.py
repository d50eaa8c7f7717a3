"""Make ``tests.brokers`` and ``interop.celery_env`` importable however pytest is invoked."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


import pytest  # noqa: E402


@pytest.fixture(params=["rabbitmq", "redis"])
def broker(request: pytest.FixtureRequest) -> str:
    """Each broker Celery and Celeriac share in these tests, with Celery's venv ready."""
    from interop import celery_env
    from tests.brokers import AMQP_URL, REDIS_URL, require

    require(str(request.param))
    celery_env.ensure(quiet=True)
    return {"redis": REDIS_URL, "rabbitmq": AMQP_URL}[str(request.param)]


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Print the interop matrix (tests/interop/test_matrix.py) when any of it ran."""
    from tests.interop.harnesses import MATRIX

    if not MATRIX:
        return
    modes = ["a", "b", "c client", "c execute redis", "c execute rpc", "c worker"]
    write = terminalreporter.write_line
    write("")
    write("interop matrix (a: they send, Celeriac runs; b: Celeriac sends, they run; c: verify)")
    head = f"{'client':<14} {'broker':<9} " + " ".join(f"{m:<22}" for m in modes)
    write(head)
    write("-" * len(head))
    for (client, broker), cells in sorted(MATRIX.items()):
        row = " ".join(f"{cells.get(m, '-'):<22}" for m in modes)
        write(f"{client:<14} {broker:<9} {row}")
