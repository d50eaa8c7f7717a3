"""The body codec of the JSON and SQS envelopes: standard base64, strict, as the stdlib's."""

from __future__ import annotations

import base64
import os

import pytest

from celeriac.protocol import base64_codec
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.errors import DecodeError
from celeriac.protocol.wire import WireMessage


@pytest.mark.parametrize("size", [0, 1, 2, 3, 57, 1000, 1 << 20])
def test_round_trips_as_the_standard_library(size: int) -> None:
    data = os.urandom(size)
    text = base64_codec.encode(data)
    assert text == base64.b64encode(data).decode("ascii")
    assert base64_codec.decode(text) == data
    assert base64_codec.decode(text.encode("ascii")) == data


@pytest.mark.parametrize("text", ["aGk", "aG k=", "aGk=\n", "aGk==", "_-8=", "aGk=aGk=", "é"])
def test_anything_but_strict_base64_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        base64.b64decode(text, validate=True)
    with pytest.raises(ValueError):
        base64_codec.decode(text)


def test_envelope_with_bad_base64_names_the_field() -> None:
    wire = WireMessage(b"[[], {}, {}]", "application/json", "utf-8", {"task": "t", "id": "1"}, {})
    packed = json_envelope.pack_wire(wire).replace(b'"body":"', b'"body":"!', 1)
    with pytest.raises(DecodeError, match=r"envelope\.body"):
        json_envelope.unpack_wire(packed)
