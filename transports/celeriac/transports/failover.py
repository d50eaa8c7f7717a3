"""Broker URL lists, as Celery writes them, and the order they are tried in on failover.

Celery takes several brokers as one string separated by ``;`` (``amqp://h1;amqp://h2``) or as a
list in ``broker_url``; a connection tries them in the order ``broker_failover_strategy`` says
(``round-robin``, the default, or ``shuffle``), moving on to the next whenever one is down.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from urllib.parse import urlsplit

from .errors import TransportError

__all__ = ["FAILOVER_STRATEGIES", "Failover", "join_urls", "split_urls"]

#: Celery's names for the order brokers are tried in.
FAILOVER_STRATEGIES = ("round-robin", "shuffle")


def split_urls(url: str | Sequence[str]) -> list[str]:
    """The broker URLs of a ``;``-separated string or a list of strings (blanks dropped)."""
    parts = [url] if isinstance(url, str) else list(url)
    urls: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise TransportError(f"a broker URL must be a string, not {type(part).__name__}")
        urls += [u.strip() for u in part.split(";") if u.strip()]
    if not urls:
        raise TransportError("no broker URL given")
    schemes = {urlsplit(u).scheme.lower() for u in urls}
    if len(schemes) > 1:
        raise TransportError(
            f"the broker URLs of one list must share a transport; got schemes {sorted(schemes)}"
        )
    return urls


def join_urls(url: str | Sequence[str]) -> str:
    """One ``;``-separated string for a URL or a list of them (Celery's two spellings)."""
    return ";".join(split_urls(url))


class Failover:
    """The order to try broker URLs in, each time a connection opens or breaks.

    ``round-robin`` starts from the URL after the one last connected to (a node that just
    failed is tried last); ``shuffle`` tries them in a new random order each time, so that many
    workers do not all fall over to the same node, except that the one last connected to goes
    last there too (a frozen node accepts a connection and answers nothing: trying it first
    costs a whole connect timeout).
    """

    def __init__(self, urls: Sequence[str], strategy: str = "round-robin") -> None:
        if strategy not in FAILOVER_STRATEGIES:
            raise TransportError(
                f"failover_strategy={strategy!r}: use one of {', '.join(FAILOVER_STRATEGIES)}"
            )
        if not urls:
            raise TransportError("no broker URL given")
        self.urls = list(urls)
        self.strategy = strategy
        #: The URL of the node connected to last (the first one until a connection opened).
        self.current: str = self.urls[0]
        self._start = 0
        self._connected = False

    def round(self) -> list[str]:
        """Every URL once, in the order to try them now."""
        if self.strategy == "shuffle":
            order = random.sample(self.urls, len(self.urls))
            if self._connected:
                order.remove(self.current)
                order.append(self.current)
            return order
        return self.urls[self._start :] + self.urls[: self._start]

    def connected(self, url: str) -> None:
        """Note that ``url`` worked: the next round starts after it."""
        self.current = url
        self._start = (self.urls.index(url) + 1) % len(self.urls)
        self._connected = True
