"""What a client under test declares it can send: ``--supports a,b,c`` or a capability file.

A case the client does not declare is reported not applicable at once (no wait, no failure).
A capability file is TOML or JSON (by its suffix)::

    client = "celery-node"        # optional: the name its known deviations are filed under
    supports = ["plain_args", "kwargs", "fail"]

    [not_supported]               # optional: why, shown beside each N/A
    countdown = "Client.sendTask takes no options"

The built-in clients' files live in ``celeriac/interop/clients/<client>.toml``
(:func:`builtin_capabilities`).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .cases import CLIENT_CASES

__all__ = [
    "Capabilities",
    "builtin_capabilities",
    "load_capabilities",
    "parse_capabilities",
    "parse_supports",
]

_KNOWN_KEYS = frozenset(("client", "supports", "not_supported"))


@dataclass(frozen=True)
class Capabilities:
    """The cases a client can express, and (optionally) why it cannot express the others."""

    supports: frozenset[str]
    client: str | None = None
    reasons: Mapping[str, str] = field(default_factory=dict)

    def reason(self, case: str) -> str:
        """Why ``case`` is not applicable to this client."""
        why = self.reasons.get(case)
        who = self.client or "the client"
        return why or f"{who} does not declare this case (capabilities)"


def _case_names(names: Iterable[Any], where: str) -> frozenset[str]:
    known = {c["name"] for c in CLIENT_CASES}
    out: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"{where}: case names are strings, not {type(name).__name__}")
        if name not in known:
            raise ValueError(
                f"{where}: no such client case {name!r} (known: {', '.join(sorted(known))})"
            )
        out.add(name)
    return frozenset(out)


def parse_supports(text: str, client: str | None = None) -> Capabilities:
    """``--supports plain_args,kwargs,...``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--supports: name at least one case")
    return Capabilities(_case_names(names, "--supports"), client)


def parse_capabilities(data: Mapping[str, Any], where: str = "capabilities") -> Capabilities:
    """A capability file's content (already parsed from TOML or JSON)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: must be a table/object, not {type(data).__name__}")
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    supports = data.get("supports")
    if not isinstance(supports, list):
        raise ValueError(f"{where}.supports: must be a list of case names")
    client = data.get("client")
    if client is not None and not isinstance(client, str):
        raise ValueError(f"{where}.client: must be a string")
    reasons = data.get("not_supported", {})
    if not isinstance(reasons, Mapping) or not all(isinstance(v, str) for v in reasons.values()):
        raise ValueError(f"{where}.not_supported: must map case names to reasons (strings)")
    names = _case_names(supports, f"{where}.supports")
    _case_names(reasons, f"{where}.not_supported")
    both = names & set(reasons)
    if both:
        raise ValueError(f"{where}: {', '.join(sorted(both))} both supported and not supported")
    return Capabilities(names, client, dict(reasons))


def load_capabilities(path: str | Path) -> Capabilities:
    """Read a capability file: ``.toml`` or ``.json``."""
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{file}: not valid {file.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    return parse_capabilities(data, str(file))


def builtin_capabilities(client: str) -> Capabilities | None:
    """The capability file shipped for a known client (celery, celery-node, ...), if any."""
    entry = resources.files("celeriac.interop") / "clients" / f"{client}.toml"
    if not entry.is_file():
        return None
    return parse_capabilities(tomllib.loads(entry.read_text(encoding="utf-8")), entry.name)
