"""Worker node names as Celery forms them: ``name@host``, with ``%h``, ``%n``, ``%d``, ``%i``
and ``%I`` expanded (``celery worker -n``)."""

from __future__ import annotations

import re
import socket

__all__ = ["DEFAULT_NAME", "node_name"]

#: The name part when ``-n`` gives none (Celery's is ``celery``).
DEFAULT_NAME = "celeriac"
_KEY = re.compile(r"%(\w)")


def node_name(spec: str | None, host: str | None = None) -> str:
    """``spec`` (``-n``) as a full node name: ``w1@%h`` -> ``w1@host.example.com``.

    As in Celery: a spec without ``@`` is the host part (``-n box`` -> ``celeriac@box``);
    ``%h`` is the host name, ``%n`` its first label, ``%d`` the rest (the domain), ``%i`` the
    pool process index (``0`` in the worker) and ``%I`` the same with a dash (empty here).
    Any other ``%x`` is refused with a ValueError naming it.
    """
    name, sep, rest = (spec or "").partition("@")
    if not sep:
        name, rest = "", name
    full = f"{name or DEFAULT_NAME}@{rest or '%h'}"
    host = host or socket.gethostname()
    short, _, domain = host.partition(".")
    keys = {"h": host, "n": short, "d": domain, "i": "0", "I": ""}

    def expand(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in keys:
            raise ValueError(
                f"node name {spec!r}: unknown %{key}; use %h (host), %n (its name), "
                f"%d (its domain) or %i (process index)"
            )
        return keys[key]

    return _KEY.sub(expand, full)
