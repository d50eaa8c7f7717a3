"""Finding a result backend by URL scheme (entry point group ``celeriac.backends``)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from celeriac.transports.errors import MissingDependency, UnknownScheme
from celeriac.transports.registry import stale_install

from .base import ResultBackend

__all__ = ["open_backend"]

GROUP = "celeriac.backends"
#: The schemes Celeriac's own result backends serve.
BUILTIN_SCHEMES = frozenset(
    {"memory", "sqlite", "redis", "rediss", "sentinel", "redis+cluster", "rediss+cluster", "rpc"}
)


def open_backend(url: str, **options: Any) -> ResultBackend:
    """The result backend for ``url``."""
    scheme = urlsplit(url).scheme.lower()
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if scheme not in found:
        hint = stale_install("result backend", scheme) if scheme in BUILTIN_SCHEMES else ""
        raise UnknownScheme(
            f"no result backend serves {scheme or url!r}; installed: "
            f"{', '.join(sorted(found))}{hint}"
        )
    try:
        cls = found[scheme].load()
    except ImportError as exc:
        raise MissingDependency(
            f"the {scheme}:// result backend needs {exc.name}: pip install 'celeriac[{scheme}]'"
        ) from exc
    backend: ResultBackend = cls(url, **options)
    return backend
