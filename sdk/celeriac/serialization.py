"""Registering serializers of your own, in Kombu's shape (``kombu.serialization.register``):
``from kombu.serialization import register`` becomes ``from celeriac.serialization import
register``. A registered name works as ``task_serializer``/``result_serializer`` and in
``apply_async(serializer=...)``; workers accept its content type once ``accept_content`` lists
it, as in Celery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celeriac.protocol.limits import Limits
from celeriac.protocol.serializers import BINARY, SERIALIZERS, Serializer

__all__ = ["register", "registry", "unregister"]

#: Names the built-in serializers have, which registering cannot replace.
_BUILT_IN = frozenset(("json", "msgpack", "yaml", "pickle"))


def register(
    name: str,
    encoder: Callable[[Any], bytes | str],
    decoder: Callable[[Any], Any],
    content_type: str,
    content_encoding: str = "utf-8",
) -> None:
    """Register a serializer: ``encoder(value)`` gives ``str`` or ``bytes``; ``decoder`` gets
    the payload as ``bytes``, as Kombu hands it a message body or a stored result, and gives
    the value."""
    if not name or not content_type:
        raise ValueError("register(): a serializer needs a name and a content_type")
    if name in _BUILT_IN or SERIALIZERS.get(content_type, None) in _builtins():
        raise ValueError(f"register(): {name!r} / {content_type!r} is a built-in serializer")
    binary = content_encoding.lower() == BINARY

    def dumps(value: Any, path: str) -> bytes:
        data = encoder(value)
        return data.encode(content_encoding) if isinstance(data, str) else bytes(data)

    def loads(data: bytes, limits: Limits) -> Any:
        return decoder(data)

    unregister(name)
    serializer = Serializer(
        name, content_type, BINARY if binary else content_encoding, dumps, loads
    )
    SERIALIZERS[name] = SERIALIZERS[content_type] = serializer


def unregister(name: str) -> None:
    """Remove a serializer registered with ``register`` (a name not registered is ignored)."""
    serializer = SERIALIZERS.get(name)
    if serializer is None or name in _BUILT_IN:
        return
    for key in [k for k, v in SERIALIZERS.items() if v is serializer]:
        del SERIALIZERS[key]


def registry() -> dict[str, str]:
    """Every serializer by name, with its content type."""
    return {s.name: s.content_type for s in set(SERIALIZERS.values())}


def _builtins() -> list[Serializer]:
    return [SERIALIZERS[n] for n in _BUILT_IN if n in SERIALIZERS]
