"""The verifying worker of ``celeriac interop verify --role client --execute``.

The verifier takes each message off the client's queue to check it, then hands the same bytes
(properties, ``reply_to`` and ``correlation_id`` kept) to a normal Celeriac worker running the
conformance tasks on a queue of its own, so the results land where the client looks: the Redis
result backend, or its reply queue with ``rpc://``. Messages the worker itself sends on (a chain's
next step, a chord's body) are passed on unchecked.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from celeriac.protocol import ProtocolError, WireMessage, decode_task
from celeriac.protocol.envelopes import amqp as amqp_envelope
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.results import ResultRecord

from .checks import RawMessage

if TYPE_CHECKING:
    from celeriac import App

__all__ = ["Executor", "conformance_app"]

_READY = frozenset(("SUCCESS", "FAILURE", "REVOKED"))


def conformance_app(broker: str, backend: str, queue: str) -> App:
    """A Celeriac app with the conformance tasks (CONFORMANCE.md) on ``queue``."""
    from celeriac import App

    app = App(
        "celeriac-interop-execute",
        broker=broker,
        backend=backend,
        task_default_queue=queue,
        task_eta_in_broker=False,
    )

    @app.task(name="interop.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="interop.echo")
    def echo(tag: str, value: Any) -> Any:
        return value

    @app.task(name="interop.fail")
    def fail(message: str) -> None:
        raise ValueError(message)

    @app.task(name="interop.sleep")
    def sleep(seconds: float) -> float:
        threading.Event().wait(float(seconds))
        return seconds

    @app.task(name="interop.xsum")
    def xsum(values: list[int]) -> int:
        return sum(values)

    return app


def wire_of(raw: RawMessage) -> WireMessage:
    """The wire message a raw delivery carries (raises ProtocolError when it has none)."""
    if raw.envelope == "amqp":
        return amqp_envelope.unpack_wire(raw.data, dict(raw.amqp_properties))
    wire, _info = json_envelope.unpack_wire(raw.data)
    return wire


class Executor:
    """A Celeriac worker behind the verifier: runs what the client sent, stores the results."""

    def __init__(self, broker: str, backend: str, queue: str) -> None:
        if not backend.startswith(("redis://", "rediss://", "rpc://")):
            raise ValueError("--execute: --backend must be a redis:// or rpc:// URL")
        from celeriac.transports import QueueSpec, open_transport
        from celeriac.worker import run_worker

        self.queue = f"{queue}.execute"
        self.app = conformance_app(broker, backend, self.queue)
        self.transport = open_transport(broker)
        self.transport.declare_queue(QueueSpec(self.queue))
        self.forwarded: set[str] = set()  # ids the verifier handed over
        self.done: set[str] = set()  # ids whose final record was stored
        self._lock = threading.Lock()
        self._last = time.monotonic()
        backend_obj = self.app.backend
        store_for = backend_obj.store_for

        def noting(record: ResultRecord, reply_to: str | None, correlation_id: str | None) -> None:
            store_for(record, reply_to, correlation_id)
            if record.status in _READY:
                with self._lock:
                    self.done.add(record.task_id)
                    self._last = time.monotonic()

        # Our own app's backend: noting each final record tells when the client's calls are done.
        setattr(backend_obj, "store_for", noting)  # noqa: B010
        self.worker = run_worker(self.app, concurrency=4, pool="threads")

    def knows(self, task_id: str | None) -> bool:
        with self._lock:
            return task_id is not None and task_id in self.forwarded

    def forward(self, raw: RawMessage) -> str | None:
        """Hand one message to the worker; its task id (``None`` when it has none)."""
        try:
            wire = wire_of(raw)
        except ProtocolError:
            return None  # the checks report it; nothing a worker could run
        try:
            task_id: str | None = decode_task(wire).id
        except ProtocolError:
            task_id = None
        self.transport.publish(self.queue, wire)
        with self._lock:
            if task_id:
                self.forwarded.add(task_id)
            self._last = time.monotonic()
        return task_id

    def settled(self, quiet: float = 1.0) -> bool:
        """True once every forwarded call has its final record and nothing happened for
        ``quiet`` seconds (a chain's later steps are sent after its first one finishes)."""
        with self._lock:
            pending = self.forwarded - self.done
            idle = time.monotonic() - self._last
        return not pending and idle >= quiet

    def close(self) -> None:
        from celeriac.worker import stop_worker

        try:
            stop_worker(self.worker)
        finally:
            self.transport.close()
            self.app.close()
