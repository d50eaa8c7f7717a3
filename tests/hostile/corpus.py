"""Hostile and malformed task messages, each with the dead-letter reason code it must get.

Two kinds: ``WIRE`` entries are envelopes a transport carries fine but whose content is bad
(published through the transport API); ``RAW`` entries are bytes that are not an envelope at all
(put where the queue's messages live with the transport's raw client).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

from celeriac.protocol import WireMessage, encode_task, new_task_message
from celeriac.protocol.envelopes import json_envelope

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "malformed"


@dataclass(frozen=True)
class Hostile:
    name: str
    #: The reason code (SPEC.md §11.2) the dead letter must carry.
    code: str
    wire: WireMessage | None = None
    raw: bytes | None = None


def _base(task_id: str) -> WireMessage:
    return encode_task(new_task_message("hostile.ok", (1,), task_id=task_id))


def _with(
    task_id: str,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    encoding: str | None = None,
    **headers: object,
) -> WireMessage:
    base = _base(task_id)
    return WireMessage(
        base.body if body is None else body,
        content_type or base.content_type,
        encoding or base.content_encoding,
        {**base.headers, **headers},
        base.properties,
    )


def _nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def wire_corpus() -> list[Hostile]:
    """Bad content in good envelopes."""
    corpus: list[Hostile] = []
    for path in sorted(VECTORS.glob("*/*.json")):
        vector = json.loads(path.read_text())
        try:
            wire, _ = json_envelope.unpack_wire(vector["wire"]["payload"])
        except ValueError:
            continue  # an envelope-level fault: the raw corpus covers those
        code = {
            "ContentDisallowed": "content-disallowed",
            "UnsupportedCompression": "unsupported-compression",
            "DecodeError": "decode-error",
        }.get(vector["expect"]["error"], "invalid-message")
        corpus.append(Hostile(f"vector:{path.stem}", code, wire=wire))
    bomb = zlib.compress(b"[" + b" " * (200 * 1024 * 1024) + b"]", 9)
    corpus += [
        Hostile("deep-nesting", "limit-exceeded", _with("deep", body=_nested(100_000))),
        Hostile("not-utf8", "decode-error", _with("notutf8", body=b"\xff\xfe[[],{},{}]")),
        Hostile("task-not-string", "invalid-message", _with("tnum", task=12345)),
        Hostile("retries-not-int", "invalid-message", _with("rstr", retries="many")),
        Hostile("expires-garbage", "invalid-message", _with("expg", expires="soon-ish")),
        Hostile("timelimit-garbage", "invalid-message", _with("tlg", timelimit="forever")),
        Hostile("kwargs-a-list", "invalid-message", _with("kwl", body=b"[[1],[2],{}]")),
        Hostile(
            "yaml-not-accepted",
            "content-disallowed",
            _with("yaml", content_type="application/x-yaml", body=b"- [1]\n- {}\n- {}\n"),
        ),
        Hostile(
            "unknown-content-type",
            "content-disallowed",
            _with("ctype", content_type="application/x-evil"),
        ),
        Hostile(
            "zlib-bomb",
            "limit-exceeded",
            _with("bomb", body=bomb, compression="application/x-gzip"),
        ),
        Hostile("unknown-task", "unknown-task", _with("nobody", task="hostile.nobody")),
        Hostile(
            "too-many-arguments",
            "limit-exceeded",
            _with("manyargs", body=b"[[" + b",".join([b"0"] * 10_001) + b"],{},{}]"),
        ),
    ]
    return corpus


def raw_corpus() -> list[Hostile]:
    """Bytes that are no envelope at all."""
    return [
        Hostile("raw:nul-bytes", "malformed-envelope", raw=b"\x00\x01\x02 garbage \xff"),
        Hostile("raw:json-array", "malformed-envelope", raw=b"[1, 2, 3]"),
        Hostile("raw:truncated-json", "malformed-envelope", raw=b'{"body": "W1tdLHt9LHt9XQ=='),
    ]
