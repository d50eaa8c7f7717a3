"""Broker settings: URL lists in Celery's spellings, and the settings that reach a transport."""

from __future__ import annotations

import logging
import uuid

import pytest

from celeriac import App
from celeriac.config import ConfigError, settings_from
from celeriac.transports.registry import redact_url
from tests.brokers import AMQP_URL, require

DEAD = "amqp://guest:s3cret-dead@127.0.0.1:5999//"


def test_a_list_in_broker_url_is_kept_as_one_failover_string() -> None:
    conf = settings_from({"broker_url": ["amqp://a//", "amqp://b//"]})
    assert conf.broker_url == "amqp://a//;amqp://b//"
    conf.broker_url = ["amqp://c//", "amqp://d//"]  # type: ignore[assignment]
    assert conf.broker_url == "amqp://c//;amqp://d//"
    with pytest.raises(ConfigError, match="broker_url: a list must hold URL strings"):
        settings_from({"broker_url": ["amqp://a//", 5]})


def test_broker_settings_reach_a_rabbitmq_transport() -> None:
    conf = settings_from(
        {
            "broker_url": "amqp://a//",
            "broker_heartbeat": 10,
            "broker_connection_timeout": 2,
            "broker_failover_strategy": "shuffle",
            "task_default_queue_type": "quorum",
        }
    )
    assert conf.broker_options() == {
        "queue_type": "quorum",
        "heartbeat": 10,
        "connect_timeout": 2,
        "failover_strategy": "shuffle",
    }


def test_broker_settings_that_cannot_apply_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"quorum.*needs a RabbitMQ broker"):
        settings_from(
            {"broker_url": "redis://h", "task_default_queue_type": "quorum"}
        ).broker_options()
    with pytest.raises(ConfigError, match="broker_heartbeat applies to RabbitMQ only"):
        settings_from({"broker_url": "redis://h", "broker_heartbeat": 5}).broker_options()
    with pytest.raises(ConfigError, match=r"a list of brokers .* needs RabbitMQ"):
        settings_from({"broker_url": ["redis://a", "redis://b"]}).broker_options()
    with pytest.raises(ConfigError, match="'stream' is not 'classic' or 'quorum'"):
        settings_from({"task_default_queue_type": "stream"}).broker_options()


def test_broker_pool_limit_is_applied_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        for limit in (3, 0, None):
            settings_from({"broker_url": "amqp://a//", "broker_pool_limit": limit}).broker_options()
            assert App("t22", broker="memory://t22", broker_pool_limit=limit).producers.limit == (
                limit or 0
            )
    assert not [r for r in caplog.records if "broker_pool_limit" in r.getMessage()]
    for bad in (-1, 2.5):
        with pytest.raises(ConfigError, match=r"setting broker_pool_limit: .* whole number"):
            settings_from({"broker_url": "redis://h", "broker_pool_limit": bad}).broker_options()


def test_delay_with_a_broker_list_fails_over_and_prints_no_password() -> None:
    require("rabbitmq")
    app = App("t20", broker=[DEAD, AMQP_URL], result_backend=None)
    assert "s3cret" not in repr(app)
    queue = f"t20-{uuid.uuid4().hex[:8]}"

    @app.task(name="t20.add")
    def add(x: int, y: int) -> int:
        return x + y

    add.apply_async((1, 2), queue=queue)
    transport = app.producer()
    assert transport.queue_length(queue) == 1
    assert transport.node == redact_url(AMQP_URL)  # type: ignore[attr-defined]
    transport.purge(queue)
