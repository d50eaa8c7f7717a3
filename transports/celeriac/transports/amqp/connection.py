"""Opening (and re-opening) a pika connection, with errors that say what to check."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit

import pika
import pika.exceptions
from pika.adapters.utils.io_services_utils import _AsyncPlaintextTransport

from ..errors import BrokerUnavailable
from ..registry import redact_url
from .liveness import watch_silence
from .options import AmqpOptions

__all__ = [
    "CONNECTION_ERRORS",
    "coalesce_writes",
    "connect",
    "option_query",
    "parameters",
    "unwritten",
    "with_retries",
    "write",
]

T = TypeVar("T")
_PLAINTEXT = _AsyncPlaintextTransport
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.ConnectionClosed,
    pika.exceptions.StreamLostError,
    pika.exceptions.ChannelWrongStateError,
    ConnectionError,
    OSError,
)


def parameters(url: str, options: AmqpOptions | None = None) -> pika.URLParameters:
    """pika parameters from a Celery-style URL (``amqp://user:pw@host:5672//`` = vhost ``/``)."""
    options = options or AmqpOptions()
    parts = urlsplit(url)
    vhost = parts.path[1:] if parts.path.startswith("/") else parts.path
    fixed = parts._replace(
        scheme="amqps" if parts.scheme == "amqps" else "amqp",
        path="/" + quote(vhost or "/", safe=""),
        query="",
    )
    params = pika.URLParameters(fixed.geturl())
    params.heartbeat = round(options.heartbeat)
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.socket_timeout = options.connect_timeout
    # The whole AMQP handshake, not only the TCP connect, is bounded by the connect timeout.
    params.stack_timeout = options.connect_timeout + 1
    if parts.scheme == "amqps":
        tls = {k: v for k, v in parse_qsl(parts.query) if k in TLS_QUERY}
        params.ssl_options = tls_options(parts.hostname or "", tls)
    return params


def option_query(url: str) -> dict[str, str]:
    """The transport options of a URL's query string (TLS settings of amqps:// left out)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "amqps":
        query = {k: v for k, v in query.items() if k not in TLS_QUERY}
    return query


#: TLS settings an ``amqps://`` URL may carry as query parameters (Celery's ``broker_use_ssl``).
TLS_QUERY = ("ca_certs", "certfile", "keyfile", "cert_reqs", "server_hostname")


def tls_options(hostname: str, query: dict[str, str]) -> pika.SSLOptions:
    """TLS for ``amqps://host/?ca_certs=/ca.pem&certfile=...&keyfile=...&cert_reqs=required``:
    the system's CAs unless ``ca_certs`` names others; the server's name is always checked
    unless ``cert_reqs=none``."""
    unknown = sorted(set(query) - set(TLS_QUERY))
    if unknown:
        raise BrokerUnavailable(
            f"unknown amqps:// URL parameter(s) {', '.join(unknown)}; valid: {', '.join(TLS_QUERY)}"
        )
    context = ssl.create_default_context(cafile=query.get("ca_certs"))
    if query.get("certfile"):
        context.load_cert_chain(query["certfile"], query.get("keyfile"))
    reqs = query.get("cert_reqs", "required").lower().removeprefix("cert_")
    if reqs not in ("required", "optional", "none"):
        raise BrokerUnavailable(f"cert_reqs={reqs!r}: use required, optional or none")
    if reqs == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif reqs == "optional":
        context.verify_mode = ssl.CERT_OPTIONAL
    return pika.SSLOptions(context, query.get("server_hostname") or hostname)


def connect(url: str, options: AmqpOptions | None = None) -> pika.BlockingConnection:
    """A blocking connection, or one BrokerUnavailable naming the host and what to check."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}"
    try:
        conn = pika.BlockingConnection(parameters(url, options))
    except pika.exceptions.ProbableAuthenticationError as exc:
        raise BrokerUnavailable(
            f"RabbitMQ at {where} refused the login ({redact_url(url)}): check the user name "
            f"and password ({exc})"
        ) from exc
    except pika.exceptions.ProbableAccessDeniedError as exc:
        raise BrokerUnavailable(
            f"RabbitMQ at {where} denied access to the virtual host in {redact_url(url)} ({exc})"
        ) from exc
    except CONNECTION_ERRORS as exc:
        raise BrokerUnavailable(
            f"RabbitMQ at {where} is unreachable ({type(exc).__name__}: {exc}); is it running, "
            f"and are the host and port of {redact_url(url)} right?"
        ) from exc
    watch_silence(conn)
    _one_write_per_message(conn._impl)
    return conn


#: A message's frames up to this size go out joined in one write (beyond it, frame by frame:
#: no copy of a large body).
_JOIN_BYTES = 256 * 1024


def _one_write_per_message(impl: Any) -> None:
    """Write a message's method, header and body frames to the socket at once, and at once.

    pika hands each frame to its transport on its own, so a publish took three ``send`` calls,
    each its own TCP segment (pika turns Nagle off), and woke RabbitMQ up to three times; and
    the transport only buffers it, turning the poller's write watch on, then a round of pika's
    I/O loop (a poll, the send, the watch off again) writes it. Now they go through
    :func:`write`, joined.
    """
    emit = impl._adapter_emit_data

    def output(frames: Sequence[bytes]) -> None:
        if len(frames) > 1 and sum(map(len, frames)) > _JOIN_BYTES:
            impl.bytes_sent += sum(map(len, frames))
            impl.frames_sent += len(frames)
            for frame in frames:
                emit(frame)
            return
        write(impl, b"".join(frames) if len(frames) > 1 else frames[0], len(frames))

    impl._output_marshaled_frames = output


def write(impl: Any, data: bytes, frames: int) -> None:
    """Write ``data``, ``frames`` whole frames, on the connection ``impl`` (pika's own, under
    the blocking one), counted as pika counts its writes.

    When nothing is waiting to be written before it, ``data`` is sent here, directly; whatever
    the socket does not take (or an error) goes through pika's own path, which keeps the order
    and reports errors (see :func:`unwritten`)."""
    impl.bytes_sent += len(data)
    impl.frames_sent += frames
    transport = impl._transport
    if (
        type(transport) is _PLAINTEXT
        and not transport._tx_buffers
        and transport._state == _PLAINTEXT._STATE_ACTIVE
    ):
        try:
            sent = transport._sock.send(data)
        except OSError:  # would block, or broken: pika's path waits or reports it
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    impl._adapter_emit_data(data)


def unwritten(impl: Any) -> bool:
    """Whether pika holds bytes not yet written to the socket (or has no socket): then only a
    round of its I/O loop writes them, or reports why it cannot."""
    transport = impl._transport
    return transport is None or transport.get_write_buffer_size() > 0


def _socket(conn: pika.BlockingConnection) -> Any:
    transport = getattr(conn._impl, "_transport", None)
    return getattr(transport, "_sock", None)


def coalesce_writes(conn: pika.BlockingConnection, on: bool) -> None:
    """Let the kernel hold small writes on ``conn`` while earlier bytes are not yet acknowledged
    by TCP, and send them together (Nagle's algorithm), or write each at once (pika's way).

    A publish loop wrote one TCP segment per message, each waking RabbitMQ (on the same cores
    here) to read ~600 bytes: ~25 us of the client's CPU and ~40 us of RabbitMQ's per message.
    Held writes go out with the next acknowledgement (RabbitMQ's, or one of its confirms);
    turning it off sends them at once, which the transport does while it waits for the broker."""
    sock = _socket(conn)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0 if on else 1)
        except OSError:  # the socket is gone: the next operation reconnects
            pass


def with_retries(
    operation: Callable[[], T], reconnect: Callable[[], None], deadline_s: float = 30.0
) -> T:
    """Run ``operation``; when the connection is lost, reconnect (backing off) and run it again.

    Past the deadline the caller gets BrokerUnavailable (a TransportError, which the worker
    waits out), never one of pika's own exceptions."""
    deadline = time.monotonic() + deadline_s
    pause = 0.1
    while True:
        try:
            return operation()
        except CONNECTION_ERRORS as exc:
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"RabbitMQ: the connection broke and did not come back within "
                    f"{deadline_s:.0f} s ({type(exc).__name__}: {exc})"
                ) from exc
        while True:
            try:
                reconnect()
                break
            except BrokerUnavailable:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(pause)  # the broker is restarting: back off, bounded
                pause = min(pause * 2, 2.0)
