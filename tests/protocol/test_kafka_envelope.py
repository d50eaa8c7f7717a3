"""The Kafka record reader: record headers mirror the envelope, the last of a name wins."""

from __future__ import annotations

import pytest

from celeriac.protocol import ValidationError, encode_task, new_task_message
from celeriac.protocol.envelopes import kafka as kafka_envelope
from celeriac.protocol.envelopes.kafka import REDELIVERED_HEADER


def _record() -> kafka_envelope.KafkaRecord:
    return kafka_envelope.pack_wire(encode_task(new_task_message("t.add", (1, 2))), "q")


def test_headers_that_agree_read_as_the_envelope_says() -> None:
    record = _record()
    wire, info = kafka_envelope.unpack_record(record.value, record.headers)
    assert wire.content_type == "application/json"
    assert wire.headers["task"] == "t.add"
    assert info.routing_key == "q"
    assert not info.redelivered


def test_the_redelivered_header_marks_the_delivery() -> None:
    record = _record()
    headers = (*record.headers, (REDELIVERED_HEADER, b"1"))
    _, info = kafka_envelope.unpack_record(record.value, headers)
    assert info.redelivered


def test_the_last_header_of_a_name_is_the_one_checked() -> None:
    record = _record()
    stale_first = (("content-type", b"application/x-python-serialize"), *record.headers)
    wire, _ = kafka_envelope.unpack_record(record.value, stale_first)
    assert wire.content_type == "application/json"
    contradicting_last = (*record.headers, ("content-encoding", b"latin-1"))
    with pytest.raises(ValidationError, match="content-encoding"):
        kafka_envelope.unpack_record(record.value, contradicting_last)
