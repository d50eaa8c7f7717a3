"""Every Redis key and channel name the transport uses (SPEC.md §6.3), prefix included."""

from __future__ import annotations

from celeriac.protocol.envelopes.redis import PRIORITY_SEP, list_key

from .options import RedisOptions

__all__ = ["Keys", "escape_glob"]


def escape_glob(text: str) -> str:
    """``text`` as a PSUBSCRIBE pattern that matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class Keys:
    """Kombu's names (lists, priority sub-lists, unacked bookkeeping, bindings, fanout
    channels) and Celeriac's own (consumers, held sets, raw entries, delayed sets, wake-ups)."""

    def __init__(self, options: RedisOptions, db: int) -> None:
        p = self.prefix = options.global_keyprefix
        self.steps = options.priority_steps
        self.unacked = p + options.unacked_key
        self.unacked_index = p + options.unacked_index_key
        self.unacked_mutex = p + options.unacked_mutex_key
        #: Entries that are not envelopes: tag -> ``<len(list key)>:<list key><entry>``.
        self.raw = p + "celeriac.unacked.raw"
        self.raw_seq = p + "celeriac.raw.seq"
        #: Delivery tag -> id of the Celeriac consumer holding it.
        self.owners = p + "celeriac.unacked.owner"
        #: Live Celeriac consumers: id -> the (server) Unix time it counts as dead after.
        self.consumers = p + "celeriac.consumers"
        fanout = options.fanout_prefix
        if fanout is True:
            fanout = "/{db}."
        self.fanout_prefix = p + (fanout.format(db=db) if isinstance(fanout, str) else "")

    def ready(self, queue: str, priority: object = None) -> str:
        """The list holding ``queue``'s messages of ``priority``."""
        return self.prefix + list_key(queue, priority, self.steps)  # type: ignore[arg-type]

    def ready_lists(self, queue: str) -> list[str]:
        """All of ``queue``'s lists, most urgent (step 0) first."""
        p = self.prefix
        return [p + (queue if s == 0 else f"{queue}{PRIORITY_SEP}{s}") for s in self.steps]

    def held(self, consumer: str) -> str:
        """The set of delivery tags consumer ``consumer`` holds."""
        return f"{self.prefix}celeriac.held.{consumer}"

    def delayed(self, queue: str) -> str:
        """Sorted set of ``queue``'s delayed envelopes, scored by the Unix time they are due."""
        return f"{self.prefix}celeriac.delayed.{queue}"

    def wake(self, queue: str) -> str:
        """Channel a Celeriac producer pokes after pushing to ``queue``."""
        return f"{self.prefix}celeriac.wake.{queue}"

    def fanout(self, exchange: str) -> str:
        """Kombu's Pub/Sub channel of a fanout exchange (no routing key)."""
        return self.fanout_prefix + exchange

    def binding(self, exchange: str) -> str:
        return f"{self.prefix}_kombu.binding.{exchange}"

    def binding_permanent(self, exchange: str) -> str:
        return f"{self.prefix}_kombu.binding_permanent.{exchange}"
