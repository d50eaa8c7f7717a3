"""Celery workers send buffered task events as one message holding a list: the receiver (and so
the dashboard) takes each of them."""

from __future__ import annotations

import uuid

from celeriac import App
from celeriac.events import EVENT_EXCHANGE, EventReceiver, event
from celeriac.protocol import WireMessage
from celeriac.protocol.serializers import dumps


def test_a_list_of_events_is_taken_one_by_one() -> None:
    app = App("batches", broker=f"memory://batches-{uuid.uuid4().hex[:8]}", backend="")
    try:
        batch = [
            event("task-received", "celery@host", uuid="t1", name="proj.add"),
            "junk",
            event("task-started", "celery@host", uuid="t1"),
        ]
        data, content_type, encoding = dumps(batch)
        message = WireMessage(data, content_type, encoding, {}, {})
        with EventReceiver(app) as receiver:
            app.producer().broadcast(EVENT_EXCHANGE, message)
            first, second = receiver.next(timeout=5), receiver.next(timeout=5)
            assert first is not None and second is not None
            assert (first["type"], second["type"]) == ("task-received", "task-started")
            assert receiver.next(timeout=0.2) is None
    finally:
        app.close()
