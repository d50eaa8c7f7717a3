"""The kazoo client: connecting with one clear error, retries across reconnects, pipelined calls."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from kazoo.client import KazooClient, TransactionRequest
from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NoNodeError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.interfaces import IAsyncResult
from kazoo.protocol.states import KeeperState
from kazoo.retry import InterruptedError as RetryInterrupted
from kazoo.retry import KazooRetry, RetryFailedError
from kazoo.security import make_acl, make_digest_acl

from ..errors import BrokerUnavailable, TransportError
from .options import ZooKeeperOptions

__all__ = [
    "DEFAULT_PORT",
    "MULTI_BYTES",
    "MULTI_OPS",
    "batches",
    "delete_all",
    "gather",
    "guarded",
    "hosts_of",
    "open_client",
    "retryable",
    "security_kwargs",
    "try_multi",
    "where",
]

DEFAULT_PORT = 2181
#: kazoo's log lines go here; an application that configures logging sees them, others don't get
#: Python's last-resort printing of every reconnect attempt on stderr.
LOG = logging.getLogger("celeriac.transports.zookeeper")
LOG.addHandler(logging.NullHandler())


class _KazooLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """kazoo's logger for one client: keeps the first warning (why the first connection attempt
    failed: refused, unknown host...) for connect's error."""

    def __init__(self) -> None:
        super().__init__(LOG, {})
        self.first_warning = ""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING and not self.first_warning:
            self.first_warning = str(msg) % args if args else str(msg)
        super().log(level, msg, *args, **kwargs)


_RETRYABLE: tuple[type[Exception], ...] = (ConnectionLoss, SessionExpiredError)


#: Bounds of one multi request. The server keeps its last 500 writes in memory (its committed
#: log, for followers), each as large as its request: multis of 512 KiB exhausted a 256 MiB heap
#: (OutOfMemoryError), 64 KiB keep that log within 32 MiB and lose little throughput.
MULTI_BYTES = 64 * 1024
MULTI_OPS = 1000
T = TypeVar("T")


def retryable(result: object) -> bool:
    """Whether a call failed in a way that the same call, made again after kazoo reconnects,
    may fix (not when the client was closed)."""
    return isinstance(result, _RETRYABLE) and not isinstance(result, ConnectionClosedError)


def hosts_of(url: str) -> str:
    """kazoo's ``host:port[,host:port...]`` from the URL's network location."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    hosts = []
    for part in filter(None, netloc.split(",")):
        _, sep, port = part.rpartition(":")
        hosts.append(part if sep and port.isdigit() else f"{part}:{DEFAULT_PORT}")
    return ",".join(hosts) or f"127.0.0.1:{DEFAULT_PORT}"


def where(url: str) -> str:
    """How errors name the broker: hosts and base path, never credentials."""
    parts = urlsplit(url)
    return f"zookeeper at {hosts_of(url)}{parts.path.rstrip('/')}"


def security_kwargs(url: str, options: ZooKeeperOptions | None = None) -> dict[str, Any]:
    """kazoo's authentication, ACL and TLS arguments for the URL's user and ``options``."""
    options = options or ZooKeeperOptions()
    parts = urlsplit(url)
    kwargs: dict[str, Any] = {}
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
        if options.sasl_mechanism:
            kwargs["sasl_options"] = {
                "mechanism": options.sasl_mechanism,
                "username": user,
                "password": password,
            }
        else:
            kwargs["auth_data"] = [("digest", f"{user}:{password}")]
        if options.creator_acl and options.sasl_mechanism:
            # a SASL session's identity is sasl:user; a digest ACL would lock it out
            kwargs["default_acl"] = [make_acl("sasl", user, all=True)]
        elif options.creator_acl:
            kwargs["default_acl"] = [make_digest_acl(user, password, all=True)]
    elif options.sasl_mechanism or options.creator_acl:
        raise TransportError(
            "ZooKeeper options sasl_mechanism and creator_acl need a user and password in the "
            "URL: zookeeper://user:password@host:2181/path"
        )
    if options.use_ssl:
        kwargs |= {
            "use_ssl": True,
            "verify_certs": options.verify_certs,
            "check_hostname": options.check_hostname,
        }
        for name in ("ca", "certfile", "keyfile"):
            if getattr(options, name):
                kwargs[name] = getattr(options, name)
    return kwargs


def open_client(
    url: str,
    *,
    connect_timeout: float,
    session_timeout: float,
    op_timeout: float,
    options: ZooKeeperOptions | None = None,
) -> KazooClient:
    """A started client; BrokerUnavailable naming the hosts when none answers in time."""
    security = security_kwargs(url, options)
    made: list[KazooClient] = []
    # Calls outlive a restart of the server, up to op_timeout seconds, but stop once closed.
    command_retry = KazooRetry(
        max_tries=-1,
        delay=0.05,
        max_delay=1.0,
        deadline=op_timeout,
        interrupt=lambda: bool(made) and made[0].client_state == KeeperState.CLOSED,
    )
    log = _KazooLog()
    client = KazooClient(
        logger=log,
        hosts=hosts_of(url),
        timeout=session_timeout,
        **security,
        # Reconnect quickly once the server is back (kazoo's default backoff grows to an hour).
        connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0},
        command_retry=command_retry,
    )
    made.append(client)
    try:
        client.start(timeout=connect_timeout)
    except KazooTimeoutError:
        _discard(client)
        why = f" ({log.first_warning})" if log.first_warning else ""
        raise BrokerUnavailable(
            f"{where(url)}: no ZooKeeper server answered within {connect_timeout:g} s{why}; "
            "check the host and port in the URL, that the server runs and that this machine "
            "can reach it"
        ) from None
    except KazooException as exc:
        _discard(client)
        raise BrokerUnavailable(
            f"{where(url)}: {type(exc).__name__}: {exc}; check the credentials in the URL "
            "and the server's ACLs"
        ) from None
    return client


def _discard(client: KazooClient) -> None:
    # A client that never connected keeps retrying in its thread until stopped.
    try:
        client.stop()
    finally:
        client.close()


def gather(calls: Sequence[IAsyncResult]) -> list[Any]:
    """Results of calls sent without waiting (pipelined); a failed call gives its exception."""
    out: list[Any] = []
    for call in calls:
        try:
            out.append(call.get())
        except KazooException as exc:
            out.append(exc)
    return out


def batches(items: Sequence[T], size: Callable[[T], int] = lambda _: 0) -> Iterator[list[T]]:
    """``items`` in runs that fit one multi request (MULTI_OPS operations, MULTI_BYTES of data)."""
    run: list[T] = []
    total = 0
    for item in items:
        n = size(item)
        if run and (len(run) >= MULTI_OPS or total + n > MULTI_BYTES):
            yield run
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        yield run


def try_multi(client: KazooClient, build: Callable[[TransactionRequest], None]) -> bool:
    """Commit the operations ``build`` adds as one multi request: all or none.

    One multi costs the server one write where as many single calls cost as many (ten times
    the throughput). False when any operation failed, or the reply was lost (the caller then
    goes one by one and must find out what was done).
    """
    tx = client.transaction()
    build(tx)
    try:
        results = tx.commit()
    except KazooException as exc:
        if retryable(exc):
            return False
        raise
    return not any(isinstance(r, Exception) for r in results)


def delete_all(client: KazooClient, paths: Sequence[str]) -> None:
    """Delete nodes, in multi requests while none is missing; missing ones are fine."""
    for run in batches(paths):

        def build(tx: TransactionRequest, run: list[str] = run) -> None:
            for path in run:
                tx.delete(path)

        if try_multi(client, build):
            continue
        results = gather([client.delete_async(path) for path in run])
        for path, result in zip(run, results, strict=True):
            if retryable(result):
                client.retry(_delete_quietly, client, path)
            elif isinstance(result, Exception) and not isinstance(result, NoNodeError):
                raise result


def _delete_quietly(client: KazooClient, path: str) -> None:
    try:
        client.delete(path)
    except NoNodeError:
        pass


class _Named(Protocol):
    where: str


F = TypeVar("F", bound=Callable[..., Any])


def guarded(method: F) -> F:
    """Turn a kazoo error inside ``method`` into a TransportError naming the server."""

    @functools.wraps(method)
    def wrapper(self: _Named, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except RetryInterrupted as exc:
            raise TransportError(f"{self.where}: the connection was closed") from exc
        except RetryFailedError as exc:
            raise BrokerUnavailable(
                f"{self.where}: no answer while retrying ({exc}); check that the server runs"
            ) from exc
        except KazooException as exc:
            raise TransportError(f"{self.where}: {type(exc).__name__}: {exc}") from exc

    return wrapper  # type: ignore[return-value]
