"""Finding a transport by URL scheme through the ``celeriac.transports`` entry points.

A third party adds a transport by publishing a package with an entry point in that group:
``myscheme = "mypackage.transport:MyTransport"``. The SDK never imports a broker client itself.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any
from urllib.parse import urlsplit

from .base import Transport
from .errors import MissingDependency, UnknownScheme

__all__ = ["available_schemes", "open_transport", "resolve"]

GROUP = "celeriac.transports"
# Which extra installs the client library a built-in transport needs.
_EXTRAS = {
    "redis": "redis", "rediss": "redis", "amqp": "amqp", "amqps": "amqp", "sqs": "sqs",
    "kafka": "kafka", "zookeeper": "zookeeper",
}  # fmt: skip


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_schemes() -> list[str]:
    """The URL schemes the installed transports serve."""
    return sorted(_entry_points())


def resolve(url: str) -> type[Transport]:
    """The transport class for ``url``'s scheme."""
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise UnknownScheme(
            f"{_redact(url)!r} has no scheme; write it as scheme://..., one of: "
            f"{', '.join(available_schemes())}"
        )
    ep = _entry_points().get(scheme)
    if ep is None:
        hint = f" (pip install 'celeriac[{_EXTRAS[scheme]}]')" if scheme in _EXTRAS else ""
        raise UnknownScheme(
            f"no transport serves {scheme}://{hint}; installed: {', '.join(available_schemes())}"
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


def open_transport(url: str, **options: Any) -> Transport:
    """Make the transport for ``url`` and connect it."""
    transport = resolve(url)(url, **options)
    transport.connect()
    return transport


def _redact(url: str) -> str:
    """``url`` with any password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


redact_url = _redact
