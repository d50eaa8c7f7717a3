"""Why a Kafka bootstrap failed: kafka-python only times out, and logs the cause on the way."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["ConnectLog", "capture_connect_log"]


class ConnectLog(logging.Handler):
    """The messages kafka-python logged while a client bootstrapped."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(record.getMessage())

    def cause(self, protocol: str, mechanism: str) -> str:
        """The likely cause, in words naming the setting to check ("" when nothing says)."""
        for text in reversed(self.messages):
            if "SaslAuthenticationFailed" in text or "Authentication failed" in text:
                return (
                    f"SASL {mechanism} authentication failed: wrong user name or password "
                    f"({text.rpartition('Error: ')[2].split(' (backoff')[0][:200]})"
                )
        for text in reversed(self.messages):
            if "CERTIFICATE_VERIFY_FAILED" in text:
                return (
                    "TLS: the broker's certificate is not signed by a trusted CA; check "
                    "ssl_cafile (certificate verify failed)"
                )
            if "Handshake failed" in text or "[SSL" in text:
                return f"TLS handshake failed ({text.rpartition('Handshake failed: ')[2][:200]})"
        if protocol.startswith("SASL") and any(
            "socket disconnected" in t and "broker_version=(" in t for t in self.messages
        ):
            # The broker answered ApiVersions, then hung up: Kafka closes the socket on a
            # rejected SASL PLAIN login without saying why (and kafka-python does not always
            # log the SCRAM failure it was sent before the close).
            return (
                f"the broker closed the connection during SASL {mechanism} authentication: wrong "
                "user name or password, or a mechanism the broker does not enable"
            )
        return ""


@contextlib.contextmanager
def capture_connect_log() -> Iterator[ConnectLog]:
    """Collect kafka-python's warnings and errors for the duration of the block."""
    handler = ConnectLog()
    logger = logging.getLogger("kafka")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
