"""A locked-down Kafka (``scripts/services cluster up kafka-secure``: SASL only, TLS signed by a
throw-away CA): a worker and a client run a task over SASL PLAIN, SCRAM-SHA-256/512 and TLS
with CA verification; a wrong password or CA is refused within the connect timeout, naming
the cause."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.contrib.testing.worker import start_worker
from celeriac.transports import BrokerUnavailable, open_transport

from .conftest import services
from .drain import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]
SSL = "127.0.0.1:19491"
SASL = "127.0.0.1:19492"


def _tls_dir() -> Path:

    cache = Path(os.environ.get("CELERIAC_CACHE", Path.home() / ".cache/celeriac"))
    run = Path(os.environ.get("CELERIAC_RUN", cache / "run"))
    return run / "clusters/kafkasec/tls"


@pytest.fixture(scope="module")
def tls() -> Iterator[Path]:
    """The locked-down broker; the directory of its CA (ca.pem) and of a stranger CA."""
    assert (REPO / "scripts/services").exists()
    services("up", "kafka-secure")
    try:
        yield _tls_dir()
    finally:
        services("down", "kafka-secure")


def run_one_task(url: str, options: dict[str, Any]) -> None:
    """A worker and a client on ``url``: one task runs, as the worker's side effect says."""
    queue = f"t20c-{uuid.uuid4().hex[:8]}"
    app = App(
        "secure",
        broker=url,
        broker_transport_options={**options, "partitions": 1},
        task_default_queue=queue,
    )
    ran = threading.Event()
    got: list[int] = []

    @app.task(name=f"{queue}.record")
    def record(x: int) -> None:
        got.append(x)
        ran.set()

    with start_worker(app, perform_ping_check=False):
        record.delay(42)
        assert ran.wait(60), f"the task did not run over {url}"
    assert got == [42]


def test_sasl_plain(tls: Path) -> None:
    run_one_task(f"kafka://alice:alice-secret@{SASL}", {})


def test_scram_sha_512_over_tls_with_ca_verification(tls: Path) -> None:
    run_one_task(
        f"kafka://scram512:scram512-secret@{SSL}",
        {"sasl_mechanism": "SCRAM-SHA-512", "ssl_cafile": str(tls / "ca.pem")},
    )


def test_scram_sha_256_and_plain_over_tls(tls: Path) -> None:
    run_one_task(
        f"kafka://scram256:scram256-secret@{SSL}",
        {"sasl_mechanism": "SCRAM-SHA-256", "ssl_cafile": str(tls / "ca.pem")},
    )
    run_one_task(f"kafka://alice:alice-secret@{SSL}", {"ssl_cafile": str(tls / "ca.pem")})


def refused(url: str, **options: Any) -> tuple[str, float]:
    """The error connecting with ``url`` raises, and how long it took."""
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable) as caught:
        open_transport(url, connect_timeout=5, **options).close()
    return str(caught.value), time.monotonic() - t0


@pytest.mark.parametrize(
    ("url", "options", "cause"),
    [
        (f"kafka://alice:wrong@{SASL}", {}, "SASL PLAIN authentication"),
        (
            f"kafka://scram512:wrong@{SSL}",
            {"sasl_mechanism": "SCRAM-SHA-512", "ssl": True},
            "SASL SCRAM-SHA-512 authentication",
        ),
        (f"kafka://alice:alice-secret@{SSL}", {"ssl": "stranger"}, "check ssl_cafile"),
    ],
    ids=["plain-wrong-password", "scram-wrong-password", "wrong-ca"],
)
def test_wrong_credentials_are_refused_clearly_and_soon(
    tls: Path, url: str, options: dict[str, Any], cause: str
) -> None:
    which = options.pop("ssl", None)
    if which:
        options["ssl_cafile"] = str(tls / ("stranger-ca.pem" if which == "stranger" else "ca.pem"))
    message, took = refused(url, **options)
    assert cause in message, message
    assert "wrong user name or password" in message or "ssl_cafile" in message, message
    assert "wrong" not in message.split("refused", 1)[1].split(":", 1)[0], "password shown"
    assert "***" in message
    assert took < 5 + 5, f"refused after {took:.1f}s, past the connect timeout"
