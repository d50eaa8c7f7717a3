"""Finding a transport by URL scheme through the ``celeriac.transports`` entry points.

A third party adds a transport by publishing a package with an entry point in that group:
``myscheme = "mypackage.transport:MyTransport"``. The SDK never imports a broker client itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any
from urllib.parse import urlsplit

from .base import Transport
from .errors import MissingDependency, UnknownScheme
from .failover import join_urls

__all__ = ["BUILTIN_SCHEMES", "available_schemes", "open_transport", "resolve", "stale_install"]

GROUP = "celeriac.transports"
# Which extra installs the client library a built-in transport needs.
_EXTRAS = {
    "redis": "redis", "rediss": "redis", "sentinel": "redis",
    "redis+cluster": "redis", "rediss+cluster": "redis", "amqp": "amqp", "amqps": "amqp",
    "sqs": "sqs", "kafka": "kafka", "zookeeper": "zookeeper",
}  # fmt: skip
#: The schemes Celeriac itself serves. Entry points are listed whatever extras are installed,
#: so one of these missing means the install's metadata predates the code, not a missing extra.
BUILTIN_SCHEMES = frozenset({"memory", "sqlite", *_EXTRAS})


def stale_install(kind: str, scheme: str) -> str:
    """What to say when the installed entry points lack a ``scheme`` Celeriac ships."""
    return (
        f"; this Celeriac ships a {kind} for {scheme}://, but the installed package's entry "
        "points predate it (an editable install not redone since it was added): reinstall "
        "Celeriac (pip install -e . in a checkout, or scripts/bootstrap)"
    )


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_schemes() -> list[str]:
    """The URL schemes the installed transports serve."""
    return sorted(_entry_points())


def resolve(url: str | Sequence[str]) -> type[Transport]:
    """The transport class for ``url``'s scheme (of the first URL of a ``;``-separated list)."""
    if not isinstance(url, str):
        url = join_urls(url)
    scheme = urlsplit(url.split(";", 1)[0].strip()).scheme.lower()
    if not scheme:
        raise UnknownScheme(
            f"{_redact(url)!r} has no scheme; write it as scheme://..., one of: "
            f"{', '.join(available_schemes())}"
        )
    ep = _entry_points().get(scheme)
    if ep is None:
        hint = stale_install("transport", scheme) if scheme in BUILTIN_SCHEMES else ""
        raise UnknownScheme(
            f"no transport serves {scheme}://; installed: {', '.join(available_schemes())}{hint}"
        )
    try:
        cls = ep.load()
    except ImportError as exc:
        extra = _EXTRAS.get(scheme, scheme)
        raise MissingDependency(
            f"the {scheme}:// transport needs {exc.name or 'a library'} that is not installed: "
            f"pip install 'celeriac[{extra}]'"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Transport)):
        raise UnknownScheme(f"entry point {ep.value!r} for {scheme}:// is not a Transport class")
    return cls


def open_transport(url: str | Sequence[str], **options: Any) -> Transport:
    """Make the transport for ``url`` (or a failover list of URLs) and connect it."""
    if not isinstance(url, str):
        url = join_urls(url)
    transport = resolve(url)(url, **options)
    transport.connect()
    return transport


def _redact(url: str | Sequence[str]) -> str:
    """``url`` (or each URL of a list) with any password replaced, for messages and logs."""
    if not isinstance(url, str):
        return ";".join(_redact(u) for u in url)
    if ";" in url:
        return ";".join(_redact(u) for u in url.split(";"))
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable (a bad port): show no part that could hold a secret
        return url.split("://", 1)[0] + "://***"
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


redact_url = _redact
