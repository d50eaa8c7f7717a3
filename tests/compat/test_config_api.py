"""App configuration as Celery does it: config_from_object (objects, module names, a Django
settings object with namespace="CELERY"), config_from_envvar, conf as a mapping, include and
autodiscover_tasks (lazy, at finalize), and the app's configure/finalize signals."""

from __future__ import annotations

import sys
import types
import uuid
import warnings

import pytest

from celeriac import App
from celeriac.config import ConfigError, NotApplicableSetting
from celeriac.exceptions import ImproperlyConfigured


def _app(**settings: object) -> App:
    return App("cfg", broker=f"memory://cfg-{uuid.uuid4().hex[:8]}", backend=None, **settings)


def test_config_from_object_reads_a_module_by_name() -> None:
    app = App("cfg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotApplicableSetting)
        assert app.config_from_object("tests.compat.fixtures.celeryconfig") is True
    assert app.conf.broker_url == "memory://from-module"
    assert app.conf.task_default_queue == "from-module"
    assert app.conf.worker_redirect_stdouts is False
    assert app.conf.worker_timer_precision == 2.0  # accepted, kept, not used


def test_constructor_settings_win_over_config_from_object() -> None:
    app = App("cfg", broker="memory://given")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotApplicableSetting)
        app.config_from_object("tests.compat.fixtures.celeryconfig")
    assert app.conf.broker_url == "memory://given"


def test_namespace_reads_only_prefixed_names() -> None:
    settings = types.SimpleNamespace(
        DEBUG=True,
        INSTALLED_APPS=["polls"],
        SECRET_KEY="x",
        BROKER_URL="memory://not-ours",  # no CELERY_ prefix: left alone
        CELERY_BROKER_URL="memory://django",
        CELERY_TASK_ALWAYS_EAGER=True,
        CELERY_RESULT_BACKEND=None,
    )
    app = App("dj")
    app.config_from_object(settings, namespace="CELERY")
    assert app.conf.broker_url == "memory://django"
    assert app.conf.task_always_eager is True
    assert app.conf.result_backend is None


def test_a_misspelled_prefixed_name_says_what_was_meant() -> None:
    app = App("dj")
    with pytest.raises(ConfigError, match="did you mean 'task_always_eager'"):
        app.config_from_object({"CELERY_TASK_ALWAYS_EGER": True}, namespace="CELERY")


def test_silent_and_missing_modules() -> None:
    app = _app()
    assert app.config_from_object("no_such_module_here", silent=True) is False
    with pytest.raises(ImportError):
        app.config_from_object("no_such_module_here")


def test_config_from_envvar(monkeypatch: pytest.MonkeyPatch) -> None:
    app = App("cfg")
    monkeypatch.delenv("CELERY_CONFIG_MODULE", raising=False)
    assert app.config_from_envvar("CELERY_CONFIG_MODULE", silent=True) is False
    with pytest.raises(ImproperlyConfigured, match="CELERY_CONFIG_MODULE"):
        app.config_from_envvar("CELERY_CONFIG_MODULE")
    monkeypatch.setenv("CELERY_CONFIG_MODULE", "tests.compat.fixtures.celeryconfig")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotApplicableSetting)
        assert app.config_from_envvar("CELERY_CONFIG_MODULE") is True
    assert app.conf.task_default_queue == "from-module"


def test_every_celery_setting_name_is_accepted_with_one_warning() -> None:
    from celeriac.celery_settings import CELERY_DEFAULTS

    name = "worker_state_db"
    assert name in CELERY_DEFAULTS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = _app(worker_state_db="/tmp/state", control_queue_ttl=5.0)
        _app(worker_state_db="/tmp/other")  # the same name again: no second warning
    said = [str(w.message) for w in caught if issubclass(w.category, NotApplicableSetting)]
    assert sum("'worker_state_db'" in s for s in said) == 1
    assert any("'control_queue_ttl'" in s for s in said)
    assert app.conf.worker_state_db == "/tmp/state"
    assert app.conf["worker_state_db"] == "/tmp/state"


def test_every_celery_setting_name_is_known() -> None:
    """Each of Celery 5.7's setting names is either ours or accepted as not applicable."""
    from celeriac.celery_settings import CELERY_DEFAULTS
    from celeriac.config import _canonical

    for name in CELERY_DEFAULTS:
        assert _canonical(name) == name
        assert _canonical(name.upper()) == name


def test_conf_is_a_mapping_too() -> None:
    app = _app()
    app.conf.update(task_default_queue="q1")
    app.conf["task_serializer"] = "json"
    assert app.conf["task_default_queue"] == "q1"
    assert app.conf.get("CELERY_DEFAULT_QUEUE") == "q1"  # old names read the same setting
    assert "broker_url" in app.conf and "no_such_thing" not in app.conf
    assert app.conf.get("no_such_thing", 7) == 7
    with pytest.raises(ConfigError, match="did you mean 'task_default_queue'"):
        app.conf.task_default_queeu = "x"


def test_include_and_autodiscover_import_at_finalize_in_order() -> None:
    sys.modules.pop("tests.compat.fixtures.discover_me.tasks", None)
    events: list[str] = []
    app = _app(include=["tests.compat.fixtures.celeryconfig"])
    app.autodiscover_tasks(["tests.compat.fixtures.discover_me", "tests.compat.fixtures.no_tasks"])

    @app.on_after_configure.connect
    def configured(sender: App, **kwargs: object) -> None:
        events.append(f"configured {sender.main}")

    @app.on_after_finalize.connect
    def finalized(sender: App, **kwargs: object) -> None:
        events.append(f"finalized {sender.main}")

    assert "tests.compat.fixtures.discover_me.tasks" not in sys.modules  # lazy, as Celery
    assert "tests.compat.fixtures.discover_me.tasks.discovered" in app.tasks
    assert events == ["configured cfg", "finalized cfg"]
    assert app.tasks["tests.compat.fixtures.discover_me.tasks.discovered"](1) == 2


def test_autodiscover_reports_a_broken_tasks_module() -> None:
    pkg = f"broken_{uuid.uuid4().hex[:8]}"
    sys.modules[pkg] = types.ModuleType(pkg)
    sys.modules[pkg].__path__ = []  # type: ignore[attr-defined]
    app = _app()
    # The package has no tasks module: skipped quietly, as Celery does.
    app.autodiscover_tasks([pkg], force=True)
    with pytest.raises(ModuleNotFoundError):
        app.autodiscover_tasks(["tests.compat.no_such_package_here"], force=True)


def test_set_default_is_used_when_no_app_is_current() -> None:
    import celeriac.app as app_module

    default = _app()
    default.set_default()
    saved = app_module._current
    app_module._current = None
    try:
        assert app_module.get_current_app() is default
    finally:
        app_module._current = saved


def test_unsupported_constructor_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="loader"):
        App("x", loader="celery.loaders.app:AppLoader")


def test_start_runs_the_command_line_for_the_app() -> None:
    name = f"memory://start-{uuid.uuid4().hex[:8]}"
    app = App("started", broker=name, backend=None)
    assert app.start(["call", "proj.tasks.add", "--args", "[1, 2]"]) is None
    app.declare("celery")
    consumer = app.producer().consumer(["celery"])
    deliveries = consumer.fetch(10, timeout=1)
    from celeriac.protocol import decode_task

    assert [decode_task(d.message).args for d in deliveries] == [(1, 2)]
    with pytest.raises(ValueError, match="worker sub-command"):
        app.worker_main(["status"])


def test_kombus_other_broker_schemes_name_the_same_brokers() -> None:
    assert App("a", broker="pyamqp://guest@localhost//").conf.broker_url == (
        "amqp://guest@localhost//"
    )
    assert App("b", broker="confluentkafka://k:9092").conf.broker_url == "kafka://k:9092"
    app = App("c")
    app.conf.broker_url = "librabbitmq://h//"
    assert app.conf.broker_url == "amqp://h//"


def test_on_after_fork_fires_in_a_forked_child() -> None:
    import os

    app = _app()
    read_end, write_end = os.pipe()

    @app.on_after_fork.connect
    def forked(sender: App, **kwargs: object) -> None:
        os.write(write_end, sender.main.encode())

    pid = os.fork()
    if pid == 0:  # the child: the hook has run by now; leave without pytest's teardown
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write_end)
    try:
        assert os.read(read_end, 100) == b"cfg"
    finally:
        os.close(read_end)
