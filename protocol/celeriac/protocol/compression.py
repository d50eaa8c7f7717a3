"""Body compression as Kombu names it: the ``compression`` header holds a content type."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .errors import DecodeError, LimitExceeded, UnsupportedCompression

__all__ = ["CODECS", "Compression", "compress", "decompress", "resolve"]


@dataclass(frozen=True, slots=True)
class Compression:
    """One compression method: the content type on the wire and the names users call it by."""

    content_type: str
    aliases: tuple[str, ...]
    compress: Callable[[bytes], bytes]
    #: ``(data, max_bytes) -> bytes``; raises LimitExceeded past max_bytes, DecodeError if bad.
    decompress: Callable[[bytes, int], bytes]


def _too_big(max_bytes: int) -> LimitExceeded:
    return LimitExceeded("body", f"decompresses to more than {max_bytes} bytes")


def _zlib_decompress(data: bytes, max_bytes: int) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, max_bytes + 1)
    if d.unconsumed_tail or len(out) > max_bytes:
        raise _too_big(max_bytes)
    if not d.eof:
        raise DecodeError("body", "truncated zlib stream")
    return out


def _stream_decompress(
    factory: Callable[[], bz2.BZ2Decompressor | lzma.LZMADecompressor],
) -> Callable[[bytes, int], bytes]:
    def run(data: bytes, max_bytes: int) -> bytes:
        d = factory()
        out = d.decompress(data, max_bytes + 1)
        if len(out) > max_bytes or (not d.eof and not d.needs_input):
            raise _too_big(max_bytes)
        if not d.eof:
            raise DecodeError("body", "truncated compressed stream")
        return out

    return run


CODECS: dict[str, Compression] = {}


def _register(codec: Compression) -> None:
    CODECS[codec.content_type] = codec
    for alias in codec.aliases:
        CODECS[alias] = codec


# Kombu calls zlib "application/x-gzip" although the bytes are a zlib stream, not gzip.
_register(Compression("application/x-gzip", ("zlib", "gzip"), zlib.compress, _zlib_decompress))
_register(
    Compression(
        "application/x-bz2",
        ("bzip2", "bzip"),
        bz2.compress,
        _stream_decompress(bz2.BZ2Decompressor),
    )
)
_register(
    Compression(
        "application/x-lzma",
        ("lzma", "xz"),
        lzma.compress,
        _stream_decompress(lzma.LZMADecompressor),
    )
)


def resolve(name: str) -> Compression:
    """Find a compression method by content type or alias."""
    codec = CODECS.get(name)
    if codec is None:
        known = sorted({c.content_type for c in CODECS.values()})
        raise UnsupportedCompression(
            "headers.compression", f"unknown compression {name!r}; known: {', '.join(known)}"
        )
    return codec


def compress(data: bytes, name: str) -> tuple[bytes, str]:
    """Compress ``data``; return the bytes and the content type for the ``compression`` header."""
    codec = resolve(name)
    return codec.compress(data), codec.content_type


def decompress(data: bytes, name: str, max_bytes: int) -> bytes:
    """Decompress ``data`` without ever producing more than ``max_bytes`` (no zip bombs)."""
    codec = resolve(name)
    try:
        return codec.decompress(data, max_bytes)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as exc:
        if isinstance(exc, DecodeError | LimitExceeded):
            raise
        raise DecodeError("body", f"invalid {codec.content_type} data: {exc}") from None
