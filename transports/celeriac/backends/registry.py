"""Finding a result backend by URL scheme (entry point group ``celeriac.backends``)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from celeriac.transports.errors import MissingDependency, UnknownScheme

from .base import ResultBackend

__all__ = ["open_backend"]

GROUP = "celeriac.backends"


def open_backend(url: str, **options: Any) -> ResultBackend:
    """The result backend for ``url``."""
    scheme = urlsplit(url).scheme.lower()
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if scheme not in found:
        raise UnknownScheme(
            f"no result backend serves {scheme or url!r}; installed: {', '.join(sorted(found))}"
        )
    try:
        cls = found[scheme].load()
    except ImportError as exc:
        raise MissingDependency(
            f"the {scheme}:// result backend needs {exc.name}: pip install 'celeriac[{scheme}]'"
        ) from exc
    backend: ResultBackend = cls(url, **options)
    return backend
