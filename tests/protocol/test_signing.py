"""Signed messages (SPEC.md §14): a signature covers the body and the headers that decide what
runs and when; any change to them, a missing signature or an unknown key is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac.protocol import WireMessage, encode_task, new_task_message
from celeriac.protocol.signing import SIGNATURE_HEADER, SignatureError, sign, verify

KEY = "k" * 32


def _wire() -> WireMessage:
    return encode_task(new_task_message("proj.add", (2, 3), {"z": 1}, task_id="t-1"))


def _with(message: WireMessage, **changes: object) -> WireMessage:
    fields = {
        "body": message.body,
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "headers": message.headers,
        "properties": message.properties,
    }
    fields.update(changes)
    return WireMessage(**fields)  # type: ignore[arg-type]


def test_a_signed_message_verifies() -> None:
    signed = sign(_wire(), KEY, "2026")
    assert signed.headers[SIGNATURE_HEADER].startswith("v1:2026:")
    assert verify(signed, {"2026": KEY}) == "2026"


@pytest.mark.parametrize(
    ("header", "value"),
    [("task", "proj.rm_rf"), ("id", "t-2"), ("eta", "2030-01-01T00:00:00+00:00"), ("retries", 9)],
)
def test_a_changed_header_breaks_the_signature(header: str, value: object) -> None:
    signed = sign(_wire(), KEY)
    tampered = _with(signed, headers={**signed.headers, header: value})
    with pytest.raises(SignatureError, match="does not match") as info:
        verify(tampered, {"default": KEY})
    assert info.value.path == f"headers.{SIGNATURE_HEADER}"


def test_missing_malformed_and_unknown_key() -> None:
    with pytest.raises(SignatureError, match="missing"):
        verify(_wire(), {"default": KEY})
    signed = sign(_wire(), KEY)
    with pytest.raises(SignatureError, match="not 'v1"):
        verify(_with(signed, headers={**signed.headers, SIGNATURE_HEADER: "junk"}), {"x": KEY})
    with pytest.raises(SignatureError, match="unknown key id 'default'"):
        verify(signed, {"other": KEY})
    with pytest.raises(SignatureError, match="does not match"):
        verify(signed, {"default": "another secret"})


def test_rotation_accepts_old_and_new_keys() -> None:
    keys = {"old": "old secret", "new": "new secret"}
    assert verify(sign(_wire(), "old secret", "old"), keys) == "old"
    assert verify(sign(_wire(), "new secret", "new"), keys) == "new"


def test_numbers_carried_as_floats_still_verify() -> None:
    signed = sign(_wire(), KEY)
    floated = _with(signed, headers={**signed.headers, "retries": 0.0})
    assert verify(floated, {"default": KEY}) == "default"


@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_any_changed_body_byte_is_caught(position: int, flip: int) -> None:
    signed = sign(_wire(), KEY)
    body = bytearray(signed.body)
    body[position % len(body)] ^= flip
    with pytest.raises(SignatureError):
        verify(_with(signed, body=bytes(body)), {"default": KEY})
