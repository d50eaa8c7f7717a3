"""Settings: Celery's names, environment variables, and clear errors for unknown names."""

from __future__ import annotations

import time
import types
import uuid

import pytest

from celeriac import App
from celeriac.config import ConfigError, Settings, setting_or, settings_from


def test_defaults_need_no_server_and_ack_late() -> None:
    s = Settings()
    assert s.broker_url.startswith("sqlite://") and s.result_backend
    assert s.task_acks_late is True
    assert s.accept_content == ("json",)


def test_new_and_old_celery_names() -> None:
    s = settings_from({"broker_url": "memory://", "CELERYD_CONCURRENCY": 4, "BROKER_URL": "x://"})
    assert s.worker_concurrency == 4 and s.broker_url in ("memory://", "x://")
    module = types.SimpleNamespace(CELERY_ACKS_LATE=False, task_default_queue="jobs", helper=1)
    s = settings_from(module)
    assert s.task_acks_late is False and s.task_default_queue == "jobs"


def test_unknown_setting_names_the_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'broker_url'"):
        settings_from({"broker_ur": "redis://"})


@pytest.mark.parametrize(
    ("key", "value"), [("task_acks_late", "maybe"), ("worker_concurrency", "many"),
                       ("task_time_limit", "soon"), ("task_acks_late", 1)],
)  # fmt: skip
def test_bad_values_name_the_setting(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        settings_from({key: value})


def test_environment_wins_and_is_converted() -> None:
    env = {
        "CELERIAC_TASK_ACKS_LATE": "false",
        "CELERIAC_ACCEPT_CONTENT": "json, msgpack",
        "CELERIAC_WORKER_CONCURRENCY": "8",
        "CELERIAC_TASK_TIME_LIMIT": "none",
        "CELERIAC_TEST_REDIS_URL": "ignored",
        "CELERIAC_BROKER_URL": "redis://h:6379/0",
        "CELERIAC_BROKER_TRANSPORT_OPTIONS": '{"visibility_timeout": 5}',
    }
    s = settings_from({"task_acks_late": True}, environ=env)
    assert s.task_acks_late is False
    assert s.accept_content == ("json", "msgpack")
    assert s.worker_concurrency == 8 and s.task_time_limit is None
    assert s.broker_url == "redis://h:6379/0"
    assert s.broker_transport_options == {"visibility_timeout": 5}
    with pytest.raises(ConfigError, match="broker_transport_options"):
        settings_from(environ={"CELERIAC_BROKER_TRANSPORT_OPTIONS": "[1]"})


def test_replace_checks_names() -> None:
    s = Settings().replace(task_default_queue="q")
    assert s.task_default_queue == "q"
    with pytest.raises(ConfigError):
        Settings().replace(nonsense=1)


def test_an_eta_is_marked_broker_delayed_even_when_already_due_at_publish() -> None:
    """A worker whose clock lags trusts the mark and runs a due task at once (SPEC.md §2.9): the
    mark must be there also when the eta passed before the publish (a slow queue declaration
    can outlast a short countdown), not only when the broker delays the message."""
    from datetime import UTC, datetime, timedelta

    from celeriac.protocol.wire import BROKER_DELAYED_HEADER

    app = App("eta", broker=f"memory://eta-{uuid.uuid4().hex[:8]}", backend=None)
    past = app.send_task("t.past", eta=datetime.now(UTC) - timedelta(seconds=2))
    soon = app.send_task("t.soon", countdown=0.05)
    consumer = app.producer().consumer([app.conf.task_default_queue])
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        got += consumer.fetch(2 - len(got), timeout=0.5)
    marks = {d.message.headers["id"]: d.message.headers.get(BROKER_DELAYED_HEADER) for d in got}
    assert marks == {past.id: True, soon.id: True}
    app.conf.update(task_eta_in_broker=False)
    held = app.send_task("t.held", countdown=0.05)
    (delivery,) = consumer.fetch(1, timeout=5)
    assert delivery.message.headers["id"] == held.id
    assert BROKER_DELAYED_HEADER not in delivery.message.headers
    consumer.close()
    app.close()


def test_the_settings_repr_shows_no_password() -> None:
    settings = Settings()
    settings.update(
        broker_url="amqp://u:first-secret@h1;amqp://u:second-secret@h2",
        result_backend="redis://:third-secret@localhost/1",
    )
    shown = repr(settings)
    assert "secret" not in shown
    assert "amqp://u:***@h1;amqp://u:***@h2" in shown


def test_setting_or_reads_as_getattr_does_and_unknown_names_still_raise() -> None:
    s = settings_from({"task_acks_late": False, "task_acks_on_failure_or_timeout": False})
    for name in ("task_acks_late", "task_acks_on_failure_or_timeout", "task_annotations"):
        assert setting_or(s, name, "default") == getattr(s, name)
    assert setting_or(s, "task_autoretry_for", "default") == "default"
    with pytest.raises(AttributeError, match="no setting 'task_autoretry_for'"):
        _ = s.task_autoretry_for


def test_task_options_that_are_no_setting_are_read_without_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Task.option runs several times a task: a name that is no setting (autoretry_for) must
    # not go through Settings.__getattr__, which raises (and builds) an AttributeError.
    app = App("opt", broker="memory://")

    @app.task(retry_kwargs={"max_retries": 2})
    def job() -> None: ...

    probed: list[str] = []

    def recording(self: Settings, name: str) -> object:
        probed.append(name)
        raise AttributeError(name)

    monkeypatch.setattr(Settings, "__getattr__", recording)
    assert job.option("autoretry_for", ()) == ()
    assert job.option("retry_kwargs") == {"max_retries": 2}
    assert job.option("acks_late") is True
    assert probed == []
