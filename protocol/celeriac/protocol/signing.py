"""Signed task messages (SPEC.md §14): an HMAC-SHA256 over the body and the headers that decide
what runs and when, carried in header ``x-celeriac-signature``. A Celeriac extension: Celery's
``auth`` serializer needs X.509 certificates and wraps the body, which this does not.

Pure: no I/O. Keys are shared secrets (bytes or str); ``keys`` maps key ids to secrets so a key
can be rotated: sign with the new one while workers still accept both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from .errors import ProtocolError
from .wire import WireMessage

__all__ = ["SIGNATURE_HEADER", "SignatureError", "sign", "signing_input", "verify"]

#: The header that carries ``v1:<key id>:<base64url MAC, unpadded>``.
SIGNATURE_HEADER = "x-celeriac-signature"
_DOMAIN = b"celeriac-signature-v1"
#: Headers covered besides the body; a change to any of them breaks the signature.
_COVERED = ("id", "task", "eta", "expires", "retries", "timelimit", "group", "root_id")


class SignatureError(ProtocolError):
    """A message whose signature is missing, malformed, from an unknown key, or wrong."""


def _text(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, list | tuple):
        return b",".join(_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # brokers that carry numbers as floats must not break the MAC
    return str(value).encode("utf-8")


def signing_input(message: WireMessage) -> bytes:
    """The bytes the MAC covers: a domain tag, the content type and encoding, the covered
    headers (each as text, ``None`` as empty), then the body, each part length-prefixed."""
    parts = [_DOMAIN, message.content_type.encode(), message.content_encoding.encode()]
    parts += [_text(message.headers.get(name)) for name in _COVERED]
    parts.append(message.body)
    return b"".join(len(p).to_bytes(8, "big") + p for p in parts)


def _mac(secret: bytes | str, message: WireMessage) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, signing_input(message), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(message: WireMessage, secret: bytes | str, key_id: str = "default") -> WireMessage:
    """The message with its signature header set."""
    if ":" in key_id:
        raise ValueError("a signing key id must not contain ':'")
    value = f"v1:{key_id}:{_mac(secret, message)}"
    headers = {**message.headers, SIGNATURE_HEADER: value}
    return WireMessage(
        message.body, message.content_type, message.content_encoding, headers, message.properties
    )


def verify(message: WireMessage, keys: Mapping[str, bytes | str]) -> str:
    """Check a message's signature against ``keys`` (key id -> secret); return the key id.

    Raises SignatureError naming what is wrong.
    """
    value = message.headers.get(SIGNATURE_HEADER)
    if value is None:
        raise SignatureError(
            f"headers.{SIGNATURE_HEADER}", "missing: this worker requires signed messages"
        )
    if not isinstance(value, str) or value.count(":") != 2:
        raise SignatureError(f"headers.{SIGNATURE_HEADER}", "not 'v1:<key id>:<mac>'")
    version, key_id, mac = value.split(":")
    if version != "v1":
        raise SignatureError(f"headers.{SIGNATURE_HEADER}", f"unknown version {version!r}")
    if key_id not in keys:
        raise SignatureError(f"headers.{SIGNATURE_HEADER}", f"unknown key id {key_id!r}")
    if not hmac.compare_digest(mac, _mac(keys[key_id], message)):
        raise SignatureError(
            f"headers.{SIGNATURE_HEADER}", "does not match: the message was changed or forged"
        )
    return key_id
