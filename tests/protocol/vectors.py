"""Loading golden vectors (protocol/vectors/**.json) and reading their wire data with our codec."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celeriac.protocol import SAFE_CONTENT_TYPES, WireMessage, decode_task
from celeriac.protocol.control import ControlRequest, parse_control_request
from celeriac.protocol.envelopes import amqp, json_envelope, kafka, sqs
from celeriac.protocol.events import Event, parse_event
from celeriac.protocol.message import TaskMessage
from celeriac.protocol.results import ResultRecord, decode_result
from celeriac.protocol.serializers import JSON, loads
from celeriac.protocol.tagged import from_tagged

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
TASK_ENVELOPES = ("redis", "amqp", "sqs", "kafka", "zookeeper", "sqlite")


def all_vectors() -> list[Path]:
    """Every vector file, sorted, so test ids are stable."""
    return sorted(VECTORS.rglob("*.json"))


def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        vector: dict[str, Any] = json.load(f)
    return vector


def vector_id(path: Path) -> str:
    return str(path.relative_to(VECTORS).with_suffix(""))


def read_wire(vector: dict[str, Any]) -> WireMessage:
    """The broker-neutral message inside a task vector's wire data."""
    wire = vector["wire"]
    envelope = vector["envelope"]
    if envelope == "amqp":
        return amqp.unpack_wire(base64.b64decode(wire["body_b64"]), wire["properties"])
    if envelope == "sqs":
        return sqs.unpack_wire(wire["body"])[0]
    if envelope == "kafka":
        return kafka.unpack_wire(wire["payload"].encode("utf-8"))[0]
    if envelope in ("redis", "zookeeper", "sqlite"):
        return json_envelope.unpack_wire(wire["payload"])[0]
    raise AssertionError(f"unknown envelope {envelope!r}")


def decode(vector: dict[str, Any]) -> TaskMessage | ResultRecord | Event | ControlRequest:
    """Decode a vector's wire data as a receiver that accepts every safe serializer would."""
    if vector["envelope"] == "results":
        return decode_result(vector["wire"]["value"].encode("utf-8"))
    if vector["envelope"] == "event":
        return parse_event(loads(vector["wire"]["body"].encode(), JSON))
    if vector["envelope"] == "control":
        return parse_control_request(loads(vector["wire"]["body"].encode(), JSON))
    return decode_task(read_wire(vector), accept=SAFE_CONTENT_TYPES)


def expected_values(tagged: Any) -> Any:
    """Expected args/kwargs are written in Kombu's tagged JSON; turn them into Python values."""
    return from_tagged(json.loads(json.dumps(tagged)))


def iter_task_vectors() -> Iterator[Path]:
    for path in all_vectors():
        vector = load(path)
        if vector["envelope"] in TASK_ENVELOPES and "error" not in vector["expect"]:
            yield path
