"""``celeriac worker -l info`` logs Celeriac's lines, not the broker clients' chatter."""

from __future__ import annotations

import logging

import pytest

from celeriac.cli import logs


@pytest.fixture(autouse=True)
def _restore() -> object:
    names = ("", *logs.BROKER_CLIENT_LOGGERS)
    before = {n: logging.getLogger(n).level for n in names}
    yield None
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def test_info_keeps_broker_clients_to_warnings() -> None:
    logs.configure("info")
    assert logging.getLogger("kafka.conn").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("kazoo.client").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.WARNING
    assert not logging.getLogger("kafka.conn").isEnabledFor(logging.INFO)
    assert logging.getLogger("celeriac.worker").isEnabledFor(logging.INFO)


def test_debug_shows_everything_and_bad_levels_are_refused() -> None:
    logs.configure("debug")
    assert logging.getLogger("kafka.conn").isEnabledFor(logging.DEBUG)
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.configure("loud")
