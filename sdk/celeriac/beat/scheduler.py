"""The beat loop: lead (or wait to), then send every tick that is due, exactly once.

See :mod:`celeriac.beat` for the guarantees and the order of recording and sending.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from ..schedules import EPOCH, BaseSchedule, clocked, maybe_schedule, zone_of
from .store import FENCED, LOCK_SCHEMES, RECORDED, LockStore, LockStoreError, open_lock_store

if TYPE_CHECKING:
    from ..app import App

__all__ = ["TICK_HEADER", "Beat", "Entry", "entries_of", "lock_url_of"]

log = logging.getLogger("celeriac.beat")

#: Headers on every message a beat sends: the tick's scheduled time (ISO 8601, UTC) and the
#: entry's name. A bound task reads them as ``self.request.headers["beat_tick"]``.
TICK_HEADER = "beat_tick"
ENTRY_HEADER = "beat_entry"
_ENTRY_KEYS = frozenset(("task", "schedule", "args", "kwargs", "options", "relative"))
_MICRO = timedelta(microseconds=1)
#: Tries to send a recorded tick while the broker errs (then the tick is logged as lost).
_SEND_ATTEMPTS = 5


def to_micros(moment: datetime) -> int:
    """A tick as the store keeps it: microseconds since the epoch."""
    return (moment.astimezone(UTC) - EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    """A tick from the store."""
    return EPOCH + micros * _MICRO


@dataclass(frozen=True)
class Entry:
    """One periodic task: a name, what to send, and when."""

    name: str
    task: str
    schedule: BaseSchedule
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


def entries_of(beat_schedule: Mapping[str, Any]) -> list[Entry]:
    """Checked entries from a ``beat_schedule`` mapping (Celery's format)."""
    entries = []
    for name, spec in beat_schedule.items():
        where = f"beat_schedule[{name!r}]"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} must be a dict with 'task' and 'schedule', got {spec!r}")
        unknown = set(spec) - _ENTRY_KEYS
        if unknown:
            raise ConfigError(
                f"{where} has unknown key(s) {sorted(unknown)}; an entry takes "
                f"{sorted(_ENTRY_KEYS)} (send options such as queue go in 'options')"
            )
        if not isinstance(spec.get("task"), str) or "schedule" not in spec:
            raise ConfigError(f"{where} needs 'task' (a task name) and 'schedule'")
        args, kwargs = spec.get("args") or (), spec.get("kwargs") or {}
        options = spec.get("options") or {}
        if not isinstance(args, list | tuple) or not isinstance(kwargs, Mapping):
            raise ConfigError(f"{where}: 'args' must be a list and 'kwargs' a dict")
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where}: 'options' must be a dict of send options")
        try:
            when = maybe_schedule(spec["schedule"], name)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        entries.append(Entry(name, spec["task"], when, tuple(args), dict(kwargs), dict(options)))
    return entries


def lock_url_of(app: App) -> str:
    """``beat_lock_url``, else the result backend's URL, else the broker's, when of a kind that
    can elect a leader."""
    conf = app.conf
    if conf.beat_lock_url:
        return conf.beat_lock_url
    for url in (conf.result_backend, conf.broker_url):
        if url and url.partition("://")[0].lower() in LOCK_SCHEMES:
            return url
    raise ConfigError(
        "beat needs a lock store to elect one leader among beats, and neither the result "
        f"backend nor the broker can be one; set beat_lock_url (or CELERIAC_BEAT_LOCK_URL) to "
        f"a redis://, sqlite:///, zookeeper:// or memory:// URL (kinds: {sorted(LOCK_SCHEMES)})"
    )


def _default_owner() -> str:
    return f"beat-{os.getpid()}@{socket.gethostname()}#{uuid.uuid4().hex[:6]}"


def owner_pid(owner: str) -> int:
    """The process id in an owner string made by a beat (``beat-<pid>@host#id``)."""
    return int(owner.partition("@")[0].removeprefix("beat-"))


class Beat:
    """A scheduler: ``Beat(app).run()`` until :meth:`stop`. Several may run; one leads."""

    def __init__(
        self,
        app: App,
        *,
        store: LockStore | None = None,
        owner: str | None = None,
        max_interval: float | None = None,
    ) -> None:
        conf = app.conf
        self.app = app
        self.entries = entries_of(conf.beat_schedule)
        self.tz: tzinfo = zone_of(conf.timezone)
        if conf.beat_catch_up not in ("latest", "all"):
            raise ConfigError(
                f"beat_catch_up is {conf.beat_catch_up!r}; use 'latest' (one send for all "
                "missed ticks, as Celery) or 'all' (every missed tick once)"
            )
        if not 0 < conf.beat_renew_seconds < conf.beat_lease_seconds:
            raise ConfigError(
                f"beat_renew_seconds ({conf.beat_renew_seconds}) must be above 0 and below "
                f"beat_lease_seconds ({conf.beat_lease_seconds}), or leaders lose their lease"
            )
        self.catch_up = conf.beat_catch_up
        self.renew = conf.beat_renew_seconds
        self.max_interval = max_interval or conf.beat_max_loop_interval
        self.key = conf.beat_lock_key or f"celeriac-beat:{app.main or '__main__'}"
        self.owner = owner or _default_owner()
        self._store = store
        self.token: int | None = None
        self.sent = 0
        self._stop = threading.Event()
        #: Set once this beat has looked at the store (leading or not): for tests and callers.
        self.ready = threading.Event()

    @property
    def store(self) -> LockStore:
        """The lock store (opened on first use)."""
        if self._store is None:
            url = lock_url_of(self.app)
            self._store = open_lock_store(url, self.key, self.app.conf.beat_lease_seconds)
        return self._store

    def stop(self) -> None:
        """Stop after the current step, and give the lease up."""
        self._stop.set()

    def run(self) -> None:
        """Lead or follow until :meth:`stop`."""
        names = ", ".join(f"{e.name} ({e.schedule!r})" for e in self.entries) or "nothing"
        log.info("beat %s: schedule %s; lock store key %s", self.owner, names, self.key)
        try:
            while not self._stop.is_set():
                try:
                    pause = self.step()
                except LockStoreError:
                    raise  # a store that cannot elect here (settings): retrying cannot help
                except Exception as exc:  # the store or the broker is unreachable: follow
                    if self.token is not None:
                        log.warning("beat %s: no longer leading: %s", self.owner, exc)
                    else:
                        log.warning("beat %s: lock store error: %s", self.owner, exc)
                    self.token = None
                    pause = self.renew
                self.ready.set()
                self._stop.wait(pause)
        finally:
            if self._store is not None:
                if self.token is not None:
                    try:
                        self._store.release(self.owner, self.token)
                        log.info("beat %s: gave the lease up", self.owner)
                    except Exception as exc:
                        log.warning("beat %s: could not give the lease up: %s", self.owner, exc)
                self._store.close()
                self._store = None
            self.token = None

    def step(self, now: datetime | None = None) -> float:
        """Renew or take the lease; if leading, send what is due. Seconds until the next step."""
        token = self.store.acquire(self.owner)
        if token != self.token:
            if token is not None:
                log.info("beat %s: leading (fencing token %d)", self.owner, token)
            else:
                log.info("beat %s: following (leader: %s)", self.owner, self.store.leader())
            self.token = token
        if token is None:
            return self.renew
        now = now or datetime.now(UTC)
        wake = now + timedelta(seconds=self.max_interval)
        last_ticks = self.store.last_ticks()
        for entry in self.entries:
            last = last_ticks.get(entry.name)
            if last is None:  # new entry: it starts now (a one-off in the past still fires)
                last = 0 if isinstance(entry.schedule, clocked) else to_micros(now)
                if not self._record(entry, last):
                    return 0.0
            after = from_micros(last)
            limit = 1000 if self.catch_up == "all" else 1_000_000
            due = entry.schedule.ticks_between(after, now, self.tz, limit=limit)
            if self.catch_up == "latest" and len(due) > 1:
                log.warning(
                    "beat %s: %s missed %d ticks; sending once, for the latest (%s)",
                    self.owner,
                    entry.name,
                    len(due) - 1,
                    due[-1].isoformat(),
                )
                due = due[-1:]
            for tick in due:
                if not self._record(entry, to_micros(tick)):
                    return 0.0
                self._send(entry, tick)
                after = tick
            upcoming = entry.schedule.next_after(max(after, now), self.tz)
            if upcoming is not None:
                wake = min(wake, upcoming)
        seconds = (wake - datetime.now(UTC)).total_seconds()
        return max(0.0, min(seconds, self.renew))

    def _record(self, entry: Entry, tick: int) -> bool:
        """Record ``tick`` as ``entry``'s last, under the fencing token; False when refused."""
        assert self.token is not None
        outcome = self.store.record(self.owner, self.token, entry.name, tick)
        if outcome == RECORDED:
            return True
        if outcome == FENCED:
            log.warning("beat %s: lost the lease; not sending %s", self.owner, entry.name)
            self.token = None
        else:
            log.warning("beat %s: %s was already recorded at a later tick", self.owner, entry.name)
        return False

    def _send(self, entry: Entry, tick: datetime) -> None:
        """Send one tick of ``entry`` (after it was recorded): at most once."""
        # Routed as a client's call of the task would be (Celery's beat calls apply_async of
        # the registered task): its own options (queue, ...), then the entry's, then
        # task_routes in send_task.
        task = self.app.tasks.get(entry.task)
        options = {**(task.send_defaults() if task is not None else {}), **entry.options}
        headers = dict(options.pop("headers", None) or {})
        headers[TICK_HEADER] = tick.isoformat()
        headers[ENTRY_HEADER] = entry.name
        for attempt in range(_SEND_ATTEMPTS):
            try:
                result = self.app.send_task(
                    entry.task, entry.args, entry.kwargs, headers=headers, **options
                )
                break
            except (TypeError, ValueError) as exc:  # a bad entry: retrying cannot help
                log.error("beat %s: cannot send %s: %s", self.owner, entry.name, exc)
                return
            except Exception as exc:
                if attempt + 1 < _SEND_ATTEMPTS and not self._stop.wait(0.2 * (attempt + 1)):
                    log.warning("beat %s: sending %s: %s; again", self.owner, entry.name, exc)
                    continue
                log.error(
                    "beat %s: sending %s (tick %s) failed, the tick is lost: %s",
                    self.owner,
                    entry.name,
                    tick.isoformat(),
                    exc,
                )
                return
        self.sent += 1
        log.info("beat %s: sent %s tick %s as %s", self.owner, entry.name, tick, result.id)
