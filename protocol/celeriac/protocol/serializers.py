"""Serializers by content type (SPEC.md §4): JSON with Kombu's tagged values, msgpack, YAML, pickle.

Pickle is registered so that a message using it can be *named* in an error, but it is never
accepted unless the caller passes its content type in ``accept`` explicitly.
"""

from __future__ import annotations

import codecs
import json
import pickle
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import (
    ContentDisallowed,
    DecodeError,
    LimitExceeded,
    UnsupportedContentType,
    ValidationError,
)
from .limits import DEFAULT_LIMITS, Limits
from .tagged import TAG_TYPE, from_tagged, to_tagged

__all__ = [
    "DEFAULT_ACCEPT",
    "JSON",
    "MSGPACK",
    "PICKLE",
    "SAFE_CONTENT_TYPES",
    "SERIALIZERS",
    "YAML",
    "Serializer",
    "dumps",
    "get_serializer",
    "loads",
]

JSON = "application/json"
MSGPACK = "application/x-msgpack"
YAML = "application/x-yaml"
PICKLE = "application/x-python-serialize"
BINARY = "binary"


@dataclass(frozen=True, slots=True)
class Serializer:
    """A serializer as it appears on the wire: name, content type and content encoding."""

    name: str
    content_type: str
    content_encoding: str
    dumps: Callable[[Any, str], bytes]
    loads: Callable[[bytes, Limits], Any]
    #: True where decoding can run code (pickle): such content is refused unless accepted.
    runs_code: bool = False


# --- JSON -------------------------------------------------------------------------------------
# orjson reads integers past 64 bits as floats and refuses to write them; the standard library
# keeps them exact. Digit runs this long are rare, so only those messages take the slow path.
# The run is found by turning every digit into a NUL and looking for 19 NULs: a regex scan costs
# ~10 ms a MiB, this ~1.5 ms. (Raw NULs are not valid JSON: a body holding some takes the slow
# path, which refuses it.)
_DIGITS_TO_NUL = bytes.maketrans(b"0123456789", b"\0" * 10)
_NUL_RUN = b"\0" * 19


def _has_long_digits(data: bytes) -> bool:
    return _NUL_RUN in data.translate(_DIGITS_TO_NUL)


_ORJSON_OPTS = orjson.OPT_NON_STR_KEYS


def _json_dumps(value: Any, path: str) -> bytes:
    tagged = to_tagged(value, path)
    try:
        return orjson.dumps(tagged, option=_ORJSON_OPTS)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise ValidationError(path, f"cannot be serialized as JSON: {exc}") from None
    try:
        return json.dumps(tagged, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValidationError(path, f"cannot be serialized as JSON: {exc}") from None


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def _values(data: bytes) -> int:
    return data.count(b",") + data.count(b"[") + data.count(b"{")


#: Bodies from this size on are checked by walking the decoded value instead of scanning the
#: bytes (the scans cost ~5 ms a MiB, a walk of a few containers holding long strings ~1 us).
_WALK_FROM = 4096
#: Containers' items a walk may visit per byte of body before it gives up for the byte scans
#: (a walk costs ~40 ns an item, the scans ~5 ns a byte).
_WALK_BYTES_PER_ITEM = 32


def _needs_scan(value: Any, budget: int, max_depth: int) -> bool:
    """Whether a decoded value may hold what the byte scans look for: a float (orjson reads
    integers past 64 bits as floats), a tagged object, nesting deeper than ``max_depth``.
    Also true once more than ``budget`` items were looked at."""
    if type(value) is float:
        return True
    stack: list[tuple[Any, int]] = [(value, 1)] if type(value) in (list, dict) else []
    while stack:
        node, level = stack.pop()
        budget -= len(node)
        if level > max_depth or budget < 0:
            return True
        if type(node) is dict and TAG_TYPE in node:
            return True
        for item in node.values() if type(node) is dict else node:
            kind = type(item)
            if kind is float:
                return True
            if kind is list or kind is dict:
                stack.append((item, level + 1))
    return False


def _json_loads(data: bytes, limits: Limits) -> Any:
    # Counted before decoding: every value after the first follows a comma or opens a container.
    # Skipped for a body too short to hold that many (in valid JSON at most 2 bytes in 3 are
    # commas or openers: ``[[],[],...]``; invalid JSON is refused by the decoder); recounted
    # without the strings' contents when the quick count (which includes them) is over.
    if 2 * len(data) > 3 * limits.max_items and _values(data) > limits.max_items:
        items = _values(_JSON_STRING.sub(b'""', data))
        if items > limits.max_items:
            raise LimitExceeded("body", f"holds {items} values, over {limits.max_items}")
    # A large body is decoded first and walked (see _needs_scan); the byte scans run only when
    # the walk finds what they look for, so a body of long strings is not scanned at all.
    walk = len(data) >= _WALK_FROM
    try:
        if walk or not _has_long_digits(data):
            value = orjson.loads(data)
            if walk:
                budget = len(data) // _WALK_BYTES_PER_ITEM
                walk = not _needs_scan(value, budget, limits.max_depth)
                if not walk and _has_long_digits(data):
                    value = json.loads(data)
        else:
            value = json.loads(data)
    except orjson.JSONDecodeError as exc:
        # Kombu writes NaN and Infinity (the standard library's extension); orjson refuses them.
        if "depth limit" in str(exc) or "recursion" in str(exc):
            raise LimitExceeded("body", "nesting is deeper than the limit") from None
        if b"NaN" not in data and b"Infinity" not in data:
            raise DecodeError("body", f"invalid JSON: {exc}") from None
        walk = False
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc2:
            raise DecodeError("body", f"invalid JSON: {exc2}") from None
    except RecursionError:
        raise LimitExceeded("body", "nesting is deeper than the limit") from None
    except ValueError as exc:
        raise DecodeError("body", f"invalid JSON: {exc}") from None
    # Tagged values and the depth limit both need a walk; skip it when neither can apply
    # (a large body's own walk above found neither: walk is still true).
    if walk:
        return value
    if b'"__type__"' in data or data.count(b"[") + data.count(b"{") > limits.max_depth:
        value = from_tagged(value, "body", limits.max_depth)
    return value


# --- msgpack ----------------------------------------------------------------------------------
def _msgpack() -> Any:
    try:
        import msgpack
    except ImportError:  # pragma: no cover - depends on the environment
        raise UnsupportedContentType(
            "content_type", "msgpack needs the msgpack package: pip install celeriac[msgpack]"
        ) from None
    return msgpack


def _msgpack_dumps(value: Any, path: str) -> bytes:
    msgpack = _msgpack()
    try:
        packed: bytes = msgpack.packb(value, use_bin_type=True)
        return packed
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(path, f"cannot be serialized as msgpack: {exc}") from None


def _msgpack_loads(data: bytes, limits: Limits) -> Any:
    msgpack = _msgpack()
    try:
        value = msgpack.unpackb(
            data, raw=False, max_array_len=limits.max_items, max_map_len=limits.max_items
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.UnpackException) as exc:
        raise DecodeError("body", f"invalid msgpack: {type(exc).__name__} {exc}".rstrip()) from None
    _check_depth(value, limits.max_depth)
    return value


# --- YAML -------------------------------------------------------------------------------------
_MAX_YAML_ALIASES = 100


def _yaml_dumps(value: Any, path: str) -> bytes:
    import yaml

    try:
        # Escaped output, as Kombu writes it: unescaped NEL and friends do not read back intact.
        return yaml.safe_dump(value).encode("utf-8")
    except yaml.YAMLError as exc:
        raise ValidationError(path, f"cannot be serialized as YAML: {exc}") from None


def _yaml_loads(data: bytes, limits: Limits) -> Any:
    import yaml

    class _BoundedLoader(yaml.SafeLoader):
        # Aliases let a few bytes stand for an exponential tree ("billion laughs").
        aliases_seen = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases_seen += 1
                if self.aliases_seen > _MAX_YAML_ALIASES:
                    raise LimitExceeded("body", f"more than {_MAX_YAML_ALIASES} YAML aliases")
            return super().compose_node(parent, index)

    try:
        value = yaml.load(data, Loader=_BoundedLoader)
    except yaml.YAMLError as exc:
        raise DecodeError("body", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise LimitExceeded("body", "nesting is deeper than the limit") from None
    _check_depth(value, limits.max_depth)
    return value


# --- pickle -----------------------------------------------------------------------------------
def _pickle_dumps(value: Any, path: str) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.DEFAULT_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ValidationError(path, f"cannot be pickled: {exc}") from None


def _pickle_loads(data: bytes, limits: Limits) -> Any:
    try:
        return pickle.loads(data)
    except Exception as exc:  # unpickling can raise anything at all
        raise DecodeError("body", f"invalid pickle: {type(exc).__name__}: {exc}") from None


def _check_depth(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | tuple | dict):
            if depth >= max_depth:
                raise LimitExceeded("body", "nesting is deeper than the limit")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


SERIALIZERS: dict[str, Serializer] = {}
for _s in (
    Serializer("json", JSON, "utf-8", _json_dumps, _json_loads),
    Serializer("msgpack", MSGPACK, BINARY, _msgpack_dumps, _msgpack_loads),
    Serializer("yaml", YAML, "utf-8", _yaml_dumps, _yaml_loads),
    Serializer("pickle", PICKLE, BINARY, _pickle_dumps, _pickle_loads, runs_code=True),
):
    SERIALIZERS[_s.name] = SERIALIZERS[_s.content_type] = _s
# Names other implementations use for the same content types.
SERIALIZERS["application/msgpack"] = SERIALIZERS["application/x-msgpack"]
SERIALIZERS["application/yaml"] = SERIALIZERS["application/x-yaml"]

#: Content types that cannot run code when decoded; a receiver may opt into any of them.
SAFE_CONTENT_TYPES: frozenset[str] = frozenset((JSON, MSGPACK, YAML))
#: What a receiver accepts unless told otherwise: JSON only, as Celery's ``accept_content``.
DEFAULT_ACCEPT: frozenset[str] = frozenset((JSON,))


def get_serializer(name: str) -> Serializer:
    """Find a serializer by name (``"json"``) or content type (``"application/json"``)."""
    serializer = SERIALIZERS.get(name)
    if serializer is None:
        known = sorted(s.name for s in set(SERIALIZERS.values()))
        raise UnsupportedContentType(
            "content_type", f"unknown serializer {name!r}; known: {', '.join(known)}"
        )
    return serializer


def dumps(value: Any, serializer: str = "json", path: str = "body") -> tuple[bytes, str, str]:
    """Serialize ``value``; return ``(data, content_type, content_encoding)``."""
    s = get_serializer(serializer)
    return s.dumps(value, path), s.content_type, s.content_encoding


def loads(
    data: bytes,
    content_type: str,
    content_encoding: str | None = None,
    *,
    accept: Iterable[str] = DEFAULT_ACCEPT,
    limits: Limits = DEFAULT_LIMITS,
) -> Any:
    """Deserialize ``data`` declared as ``content_type``; refuse what ``accept`` does not allow."""
    if len(data) > limits.max_message_bytes:
        raise LimitExceeded("body", f"larger than {limits.max_message_bytes} bytes")
    s = SERIALIZERS.get(content_type)
    if s is None:
        raise UnsupportedContentType("content_type", f"unknown content type {content_type!r}")
    accepted = accept if isinstance(accept, frozenset | set) else frozenset(accept)
    if s.content_type not in accepted and s.name not in accepted:
        reason = f"content type {content_type!r} is not accepted"
        if s.runs_code:
            reason += " (it can run code when decoded; accept it explicitly to allow it)"
        raise ContentDisallowed("content_type", reason)
    if content_encoding and s.content_encoding != BINARY:
        data = _to_utf8(data, content_encoding)
    return s.loads(data, limits)


def _to_utf8(data: bytes, content_encoding: str) -> bytes:
    """Text in another character set becomes UTF-8. Any other label (``binary``, ``gzip``, a
    name no codec has) leaves the bytes to the serializer, as Kombu does (§4): its decoders never
    look at the content encoding."""
    enc = content_encoding.lower()
    if enc in ("utf-8", "utf8", "binary", "ascii"):
        return data
    try:
        if not codecs.lookup(enc)._is_text_encoding:
            return data  # a bytes-to-bytes codec (zlib, base64): not a character set
    except LookupError:
        return data
    try:
        return data.decode(enc).encode("utf-8")
    except UnicodeError as exc:
        raise DecodeError("body", f"not valid {content_encoding}: {exc}") from None
