"""Settings: Celery's names (new lower-case and old upper-case), from code, objects or the
environment, with unknown names refused and the closest valid one suggested."""

from __future__ import annotations

import difflib
import json
import logging
import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .celery_settings import CELERY_DEFAULTS, CELERY_OLD_NAMES

__all__ = ["ConfigError", "NotApplicableSetting", "Settings", "settings_from"]

DEFAULT_BROKER = "sqlite:///celeriac-broker.db"
DEFAULT_BACKEND = "sqlite:///celeriac-results.db"


class ConfigError(ValueError):
    """A setting that does not exist or has a value of the wrong kind."""


class NotApplicableSetting(UserWarning):
    """A Celery setting Celeriac accepts but has no use for (warned once per name)."""


# Kombu's other names for the brokers Celeriac serves (``pyamqp://`` is the URL of Celery's
# first-steps guide), as the scheme Celeriac's transport is registered under.
_BROKER_ALIASES = {"pyamqp": "amqp", "librabbitmq": "amqp", "confluentkafka": "kafka"}


def _unaliased(url: Any) -> Any:
    if isinstance(url, str):
        scheme, sep, rest = url.partition("://")
        if sep and scheme in _BROKER_ALIASES:
            return f"{_BROKER_ALIASES[scheme]}://{rest}"
    return url


@dataclass(slots=True)
class Settings:
    """Every setting, with its default. Names are Celery's where the meaning is the same."""

    #: One URL, or several (a cluster) as a list or one string separated by ``;``.
    broker_url: str = DEFAULT_BROKER
    result_backend: str | None = DEFAULT_BACKEND
    #: Options of the result backend (Celery's name): ``master_name`` and ``sentinel_kwargs``
    #: for a ``sentinel://`` backend.
    result_backend_transport_options: Mapping[str, Any] = field(default_factory=dict)
    broker_transport_options: Mapping[str, Any] = field(default_factory=dict)
    #: A worker waits for an unreachable broker at start, retrying with backoff (Celery's names).
    broker_connection_retry_on_startup: bool = True
    broker_connection_max_retries: int = 100
    #: Seconds between AMQP heartbeats (RabbitMQ only; None: the transport's default, 30 s).
    broker_heartbeat: float | None = None
    #: Seconds to wait for a broker node to accept a connection.
    broker_connection_timeout: float = 4.0
    #: Order the URLs of a list are tried in: ``round-robin`` or ``shuffle``.
    broker_failover_strategy: str = "round-robin"
    #: The most broker connections an app's tasks are sent through in a process, by every
    #: thread and asyncio caller together; None or 0: one opened and closed per send (Celery's).
    broker_pool_limit: int | None = 10
    #: ``classic`` or ``quorum``: the type of the queues declared on RabbitMQ (Celery 5.5).
    task_default_queue_type: str = "classic"
    task_serializer: str = "json"
    result_serializer: str = "json"
    accept_content: tuple[str, ...] = ("json",)
    task_compression: str | None = None
    task_default_queue: str = "celery"
    task_routes: Mapping[str, Any] = field(default_factory=dict)
    #: At-least-once by default: ack after the task ran (Celery's default is early acks).
    task_acks_late: bool = True
    task_reject_on_worker_lost: bool = True
    task_ignore_result: bool = False
    task_track_started: bool = False
    task_time_limit: float | None = None
    task_soft_time_limit: float | None = None
    task_default_retry_delay: float = 180.0
    task_max_retries: int | None = 3
    task_default_rate_limit: str | None = None
    task_always_eager: bool = False
    #: A send that fails because the broker is unreachable is tried again on a new connection
    #: (Celery's names and defaults; ``apply_async(retry=, retry_policy=)`` per call).
    task_publish_retry: bool = True
    task_publish_retry_policy: Mapping[str, Any] = field(
        default_factory=lambda: {
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        }
    )
    #: Countdown/ETA tasks wait in the broker (delayed delivery), not in a worker's memory.
    #: Turn off when real Celery workers consume the queues on Redis or SQS: they only honour
    #: the ``eta`` header, and never look in Celeriac's delayed set.
    task_eta_in_broker: bool = True
    task_eager_propagates: bool = False
    result_expires: float | None = 86400.0
    result_extended: bool = False
    #: Retry result writes that fail because the backend is unreachable, backing off from
    #: ``result_backend_base_sleep_between_retries_ms`` to ``..._max_sleep_...``, instead of
    #: giving the message back (which would run the task again). Celery's names; on by default
    #: here (Celery: off).
    result_backend_always_retry: bool = True
    result_backend_max_retries: int = 30
    result_backend_base_sleep_between_retries_ms: int = 10
    result_backend_max_sleep_between_retries_ms: int = 10_000
    worker_concurrency: int | None = None
    worker_prefetch_multiplier: int = 4
    worker_pool: str = "threads"
    worker_max_tasks_per_child: int | None = None
    #: Allow the ``pool_restart`` remote command (Celery's setting, off by default as there).
    worker_pool_restarts: bool = False
    worker_max_memory_per_child: int | None = None
    #: Events (SPEC.md §9), off by default as in Celery: task events from workers, and the
    #: task-sent event from clients.
    worker_send_task_events: bool = False
    task_send_sent_event: bool = False
    #: Decoder limits a worker applies to every message (SPEC.md §12): bytes after
    #: decompression, nesting depth, and arguments per call.
    worker_max_message_bytes: int = 64 * 1024 * 1024
    worker_max_depth: int = 100
    worker_max_arguments: int = 10_000
    #: Most values one decoded body may hold (a body of many tiny items expands in memory).
    worker_max_decoded_items: int = 1_000_000
    #: Most times one message is delivered: a message given back more often (the worker died
    #: running it, or the task failed in a way that requeues it) is dead-lettered as poison.
    worker_max_deliveries: int = 5
    #: Logging of ``celeriac worker``/``beat``, as Celery's: the root logger's handlers are
    #: replaced by Celeriac's (unless False), and lines have these formats (task loggers' lines
    #: with the running task's name and id).
    worker_hijack_root_logger: bool = True
    worker_log_format: str = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
    worker_task_log_format: str = (
        "[%(asctime)s: %(levelname)s/%(processName)s] %(task_name)s[%(task_id)s]: %(message)s"
    )
    worker_log_datefmt: str | None = None
    worker_task_log_datefmt: str | None = None
    #: What ``celeriac worker``/``beat`` print (a task's ``print()`` too) is logged at this
    #: level instead, as Celery's worker does; False leaves stdout and stderr alone.
    worker_redirect_stdouts: bool = True
    worker_redirect_stdouts_level: str = "WARNING"
    #: Secret that signs every task message this app sends (HMAC-SHA256, SPEC.md §14).
    security_signing_key: str | None = None
    #: The id the signature names, so workers can hold several keys while one is rotated.
    security_signing_key_id: str = "default"
    #: More keys a worker accepts, by id (the signing key is always accepted).
    security_verify_keys: Mapping[str, str] = field(default_factory=dict)
    #: The worker dead-letters messages that are unsigned or whose signature does not match.
    security_require_signature: bool = False
    timezone: str = "UTC"
    enable_utc: bool = True
    # -- beat: periodic tasks (celeriac.beat) ------------------------------------------------
    #: Periodic tasks by name: ``{"task": name, "schedule": seconds | crontab | datetime,
    #: "args": [...], "kwargs": {...}, "options": {...}}`` (Celery's format).
    beat_schedule: Mapping[str, Any] = field(default_factory=dict)
    #: Longest a beat sleeps between looks at its schedule, in seconds (Celery's name).
    beat_max_loop_interval: float = 300.0
    #: Where beats elect their leader and keep each entry's last tick: redis://, sqlite:///,
    #: zookeeper:// or memory://. Default: the result backend, else the broker, if of those kinds.
    beat_lock_url: str | None = None
    #: Names the schedule in the lock store (beats with the same key share one leader).
    #: Default: ``celeriac-beat:<app name>``.
    beat_lock_key: str | None = None
    #: A leader that has not renewed its lease for this long is replaced (seconds).
    beat_lease_seconds: float = 3.0
    #: How often the leader renews its lease, and followers try to take it (seconds).
    beat_renew_seconds: float = 1.0
    #: Ticks missed while no beat led: ``"latest"`` sends once, for the latest missed tick
    #: (Celery's behaviour); ``"all"`` sends every missed tick once, oldest first.
    beat_catch_up: str = "latest"
    # -- modules ---------------------------------------------------------------------------
    #: Modules a worker imports at start, so their tasks are registered (Celery's names;
    #: ``App(include=[...])`` sets ``include``).
    imports: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    #: Celery settings given that Celeriac does not use (each warned about once), by name.
    not_applicable: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (names checked as for the constructor)."""
        return settings_from(changes, base=self)

    def __repr__(self) -> str:
        # Settings get logged and printed in tracebacks: URLs show without their passwords.
        from celeriac.transports import redact_url

        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("broker_url", "result_backend", "beat_lock_url") and value:
                value = redact_url(str(value))
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def update(self, other: Mapping[str, Any] | None = None, **changes: Any) -> None:
        """Change settings in place, checked as for the constructor (Celery's
        ``app.conf.update``). Plain assignment (``app.conf.beat_schedule = {...}``) works too,
        for known names; set them before the app opens connections."""
        new = settings_from({**(other or {}), **changes}, base=self)
        for f in fields(self):
            object.__setattr__(self, f.name, getattr(new, f.name))

    def broker_options(self) -> dict[str, Any]:
        """The options to open ``broker_url`` with: ``broker_transport_options`` plus the broker
        settings that apply to its transport (each refused where it cannot apply)."""
        options = dict(self.broker_transport_options)
        scheme = self.broker_url.split("://", 1)[0].lower()
        amqp = scheme in ("amqp", "amqps")
        if self.task_default_queue_type not in ("classic", "quorum"):
            raise ConfigError(
                f"setting task_default_queue_type: {self.task_default_queue_type!r} is not "
                "'classic' or 'quorum'"
            )
        if self.task_default_queue_type == "quorum":
            if not amqp:
                raise ConfigError(
                    f"setting task_default_queue_type='quorum' needs a RabbitMQ broker, not {scheme}://"
                )
            options.setdefault("queue_type", "quorum")
        limit = self.broker_pool_limit
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ConfigError(
                f"setting broker_pool_limit: {limit!r} is not a whole number of connections "
                "(0 or None: one per send, without a pool)"
            )
        if amqp:
            if self.broker_heartbeat is not None:
                options.setdefault("heartbeat", self.broker_heartbeat)
            options.setdefault("connect_timeout", self.broker_connection_timeout)
            options.setdefault("failover_strategy", self.broker_failover_strategy)
            return options
        if self.broker_heartbeat is not None:
            raise ConfigError(f"setting broker_heartbeat applies to RabbitMQ only, not {scheme}://")
        if ";" in self.broker_url and scheme != "sentinel":
            raise ConfigError(
                "setting broker_url: a list of brokers (failover) needs RabbitMQ (or "
                f"sentinel:// for Redis), not {scheme}://"
            )
        if scheme in ("redis", "rediss", "sentinel", "redis+cluster", "rediss+cluster"):
            options.setdefault("socket_connect_timeout", self.broker_connection_timeout)
        return options

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _FIELD_NAMES and name != "not_applicable":
            self.update({name: value})  # raises, naming the closest valid setting
            return
        if name == "broker_url":
            value = _unaliased(value)
            if isinstance(value, list | tuple):
                value = _coerce(name, value)
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not fields: Celery's settings we do not use read as
        # given, else as Celery's default, so code that reads them keeps working.
        if name in CELERY_DEFAULTS:
            return self.not_applicable.get(name, CELERY_DEFAULTS[name])
        raise AttributeError(f"no setting {name!r}")

    # Celery's ``app.conf`` is also a mapping: ``conf["broker_url"]``, ``conf.get(...)``.
    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, _canonical(name))
        except (ConfigError, AttributeError):
            raise KeyError(name) from None

    def __setitem__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __contains__(self, name: object) -> bool:
        try:
            self[str(name)]
        except KeyError:
            return False
        return True

    def get(self, name: str, default: Any = None) -> Any:
        """A setting by name (Celery's or its old upper-case name), else ``default``."""
        try:
            return self[name]
        except KeyError:
            return default

    def setdefault(self, name: str, value: Any) -> Any:
        """Celery's ``conf.setdefault``: set ``name`` unless it was given, return its value."""
        key = _canonical(name)
        given = (
            getattr(self, key) != _DEFAULTS[key]
            if key in _FIELD_NAMES
            else key in self.not_applicable
        )
        if not given:
            self.update({key: value})
        return self[key]


_FIELD_NAMES = frozenset(f.name for f in fields(Settings) if f.name != "not_applicable")
_DEFAULTS: dict[str, Any] = {name: getattr(Settings(), name) for name in _FIELD_NAMES}
log = logging.getLogger("celeriac.config")
_warned: set[str] = set()
_warned_lock = threading.Lock()


def setting_or(settings: Settings, name: str, default: Any = None) -> Any:
    """``getattr(settings, name, default)`` without raising and catching an ``AttributeError``
    for a name that is no setting: a task's options are read so on every call it runs."""
    if name in _FIELD_NAMES:
        return getattr(settings, name)
    if name in CELERY_DEFAULTS:
        return settings.not_applicable.get(name, CELERY_DEFAULTS[name])
    return default


# Celery's pre-4.0 upper-case names, for configuration modules people already have.
_OLD_NAMES = {
    "BROKER_URL": "broker_url",
    "CELERY_BROKER_URL": "broker_url",
    "BROKER_TRANSPORT_OPTIONS": "broker_transport_options",
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_TASK_SERIALIZER": "task_serializer",
    "CELERY_RESULT_SERIALIZER": "result_serializer",
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_MESSAGE_COMPRESSION": "task_compression",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_ROUTES": "task_routes",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERY_DEFAULT_RATE_LIMIT": "task_default_rate_limit",
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERYD_POOL": "worker_pool",
    "CELERYD_MAX_TASKS_PER_CHILD": "worker_max_tasks_per_child",
    "CELERYD_MAX_MEMORY_PER_CHILD": "worker_max_memory_per_child",
    "CELERY_TIMEZONE": "timezone",
    "CELERY_ENABLE_UTC": "enable_utc",
}
_FIELDS = {f.name: f for f in fields(Settings) if f.name != "not_applicable"}
_ENV_PREFIX = "CELERIAC_"
# Lower-case names read from a settings object (module): ours, and Celery's.
_ACCEPTED = frozenset(_FIELDS) | frozenset(CELERY_DEFAULTS)


def _canonical(name: str) -> str:
    if name in _FIELDS:
        return name
    if name in _OLD_NAMES:
        return _OLD_NAMES[name]
    if name.lower() in _FIELDS:
        return name.lower()
    if name in CELERY_OLD_NAMES:
        return _canonical(CELERY_OLD_NAMES[name])
    if name.lower() in CELERY_DEFAULTS:
        return name.lower()  # a Celery setting Celeriac does not use: see _not_applicable
    candidates = [*_FIELDS, *_OLD_NAMES, *CELERY_DEFAULTS]
    close = difflib.get_close_matches(name.lower(), candidates, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown setting {name!r}{hint}")


def _coerce(name: str, value: Any) -> Any:
    """Check a value against the setting's type; strings from the environment are converted."""
    if name == "broker_url":
        value = _unaliased(value)
    if name == "worker_redirect_stdouts_level":
        # Celery takes a level name or number; kept as the name.
        level = value if isinstance(value, int) else logging.getLevelName(str(value).upper())
        if isinstance(value, bool) or not isinstance(level, int):
            raise ConfigError(f"setting {name}: {value!r} is not a logging level")
        return logging.getLevelName(level)
    kind = str(_FIELDS[name].type)
    if name == "broker_url" and isinstance(value, list | tuple):
        # Celery's other spelling of a failover list: kept as one ``;``-separated string.
        if not value or not all(isinstance(u, str) and u.strip() for u in value):
            raise ConfigError(f"setting broker_url: a list must hold URL strings, got {value!r}")
        return ";".join(u.strip() for u in value)
    if isinstance(value, str) and not kind.startswith("str"):
        text = value.strip()
        if kind.startswith("bool"):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
        elif kind.startswith(("int", "float")) and text.lower() in ("", "none", "null"):
            if "None" in kind:
                return None
        elif kind.startswith("tuple"):
            return tuple(part.strip() for part in text.split(",") if part.strip())
        elif kind.startswith("Mapping"):
            try:
                value = json.loads(text or "{}")
            except json.JSONDecodeError as exc:
                raise ConfigError(f"setting {name}: not a JSON object: {exc}") from None
            if not isinstance(value, dict):
                raise ConfigError(f"setting {name}: expected a JSON object, got {text!r}")
            return value
        try:
            if kind.startswith("int"):
                return int(text)
            if kind.startswith("float"):
                return float(text)
        except ValueError:
            pass
        raise ConfigError(f"setting {name}: {value!r} is not a valid {kind}")
    if kind.startswith("tuple") and isinstance(value, list | tuple):
        return tuple(value)
    if kind.startswith("bool") and not isinstance(value, bool):
        raise ConfigError(f"setting {name}: expected true or false, got {value!r}")
    if (
        kind.startswith(("int", "float"))
        and value is not None
        and (isinstance(value, bool) or not isinstance(value, int | float))
    ):
        raise ConfigError(f"setting {name}: expected a number, got {value!r}")
    return value


def settings_from(
    source: Mapping[str, Any] | object | None = None,
    *,
    base: Settings | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from a mapping or an object's upper- and lower-case attributes (a config module).

    ``environ`` (pass ``os.environ``) adds ``CELERIAC_<SETTING>`` variables, which win.
    """
    values: dict[str, Any] = {}
    ignored: dict[str, Any] = {}
    if source is not None:
        items = (
            source.items()
            if isinstance(source, Mapping)
            else ((k, getattr(source, k)) for k in dir(source) if not k.startswith("_"))
        )
        for key, value in items:
            if isinstance(source, Mapping) or key.isupper() or key in _ACCEPTED:
                name = _canonical(key)
                if name in _FIELDS:
                    values[name] = _coerce(name, value)
                else:
                    _not_applicable(name)
                    ignored[name] = value
    for key, value in (environ or {}).items():
        if key.startswith(_ENV_PREFIX) and not key.startswith("CELERIAC_TEST_"):
            name = key[len(_ENV_PREFIX) :].lower()
            if name in _FIELDS:
                values[name] = _coerce(name, value)
    if ignored:
        values["not_applicable"] = {**(base.not_applicable if base else {}), **ignored}
    return replace(base or Settings(), **values)


def _not_applicable(name: str) -> None:
    with _warned_lock:
        if name in _warned:
            return
        _warned.add(name)
    warnings.warn(
        f"setting {name!r} is a Celery setting that does not apply to Celeriac; it is ignored",
        NotApplicableSetting,
        stacklevel=4,
    )


def namespaced(source: Mapping[str, Any] | object, namespace: str) -> dict[str, Any]:
    """The settings in ``source`` whose names start with ``<namespace>_``, prefix removed
    (``CELERY_BROKER_URL`` -> ``broker_url``), as Celery reads ``namespace="CELERY"``; every
    other name in ``source`` is left alone."""
    prefix = f"{namespace}_"
    items = (
        source.items()
        if isinstance(source, Mapping)
        else ((k, getattr(source, k)) for k in dir(source) if not k.startswith("_"))
    )
    found: dict[str, Any] = {}
    for key, value in items:
        if key.upper().startswith(prefix.upper()):
            found[key[len(prefix) :].lower()] = value
    return found


def environment() -> Mapping[str, str]:
    """The process environment (a seam for tests)."""
    return os.environ
