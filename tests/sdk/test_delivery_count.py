"""How the worker counts a message's deliveries from what each kind of broker tells it."""

from __future__ import annotations

import pytest

from celeriac.protocol import encode_task, new_task_message
from celeriac.transports import Delivery
from celeriac.worker.boundary import DELIVERY_COUNT_HEADER, deliveries


def _delivery(redelivered: bool, header: object = None, broker: int | None = None) -> Delivery:
    wire = encode_task(new_task_message("count.task", ()))
    if header is not None:
        wire.headers[DELIVERY_COUNT_HEADER] = header
    return Delivery("q", wire, 1, redelivered, deliveries=broker)


@pytest.mark.parametrize(
    ("redelivered", "header", "broker", "flagged_only", "expected"),
    [
        (False, None, None, False, 1),  # a first delivery
        (True, None, None, False, 2),  # flagged, nothing more known: at least the second
        (True, 2, None, False, 3),  # the Redis restorer counted it in the header
        (False, 2, None, True, 3),  # the worker's counted copy, not redelivered
        (True, None, None, True, 2),  # classic RabbitMQ: the first copy ran, once
        (True, 2, None, True, 4),  # a counted copy that ran and killed its worker
        (True, None, 3, True, 3),  # the broker counts (SQS, SQLite): taken as it is
        (True, "7", None, True, 2),  # a header that is no count is ignored
        (True, -1, None, True, 2),
        (True, True, None, True, 2),
    ],
)
def test_deliveries_counts_what_each_broker_says(
    redelivered: bool, header: object, broker: int | None, flagged_only: bool, expected: int
) -> None:
    delivery = _delivery(redelivered, header, broker)
    assert deliveries(delivery, flagged_only=flagged_only) == expected
