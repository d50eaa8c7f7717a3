"""Periodic tasks ("beat"), with several beats running and exactly one sending each tick.

Run it alone (``celeriac beat -A proj.tasks:app``) or inside a worker (``celeriac worker
-A proj.tasks:app --beat``). The schedule is ``app.conf.beat_schedule`` (Celery's format) plus
``app.add_periodic_task(...)``; schedules are in :mod:`celeriac.schedules`.

Leader election. Every beat asks a lock store (``beat_lock_url``; default: the result
backend's URL, else the broker's, when it is redis://, sqlite:///, zookeeper:// or memory://)
for a lease of ``beat_lease_seconds`` (3 s), which the leader renews every
``beat_renew_seconds`` (1 s) and the others try to take as often. When the leader dies, its
lease runs out and another beat leads within lease + renew seconds. Each new leadership comes
with a larger *fencing token* (see :mod:`celeriac.beat.store`).

State. The store keeps, per entry, the scheduled time of the last tick sent (ticks are
computed, not measured: every beat agrees on them, see :mod:`celeriac.schedules`). A new
leader continues after that tick, so it repeats none; ticks that fell due while no beat led
are sent late, by ``beat_catch_up``: ``"latest"`` (default, Celery's behaviour) sends once,
for the latest missed tick; ``"all"`` sends each missed tick once, oldest first. An entry seen
for the first time starts at that moment (a one-off datetime in the past still fires once).

Order: record, then send. For each due tick the leader (1) records the tick as the entry's
last, in one atomic step of the store that also checks that it still holds the lease under
its fencing token, then (2) sends ``app.send_task(task, args, kwargs, **options)`` with the
headers ``beat_tick`` (the scheduled time, ISO 8601 UTC) and ``beat_entry``. A stale leader
(paused past its lease, cut off) is refused at (1) and sends nothing, so two beats never both
send one tick. A leader killed between (1) and (2) loses that one send (the next leader sees
the tick recorded): at most once per tick, and exactly once unless a beat dies in that
window of a few milliseconds. The other order (send, then record) would instead send a tick
twice when a leader dies between the two, on every fail-over that hits it; a duplicated
periodic task is the worse failure for most schedules (reports, billing), so we record first.
A send that fails while the broker errs is retried a few times, then logged as lost.
"""

from __future__ import annotations

from .scheduler import ENTRY_HEADER, TICK_HEADER, Beat, Entry, entries_of, lock_url_of
from .store import LockStore, LockStoreError, open_lock_store

__all__ = [
    "ENTRY_HEADER",
    "TICK_HEADER",
    "Beat",
    "Entry",
    "LockStore",
    "LockStoreError",
    "entries_of",
    "lock_url_of",
    "open_lock_store",
]
