"""SQS FIFO options as Celery users pass them: ``apply_async(MessageGroupId=...,
MessageDeduplicationId=...)``, sent to SQS unchanged (ElasticMQ, a real FIFO queue)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from celeriac import App
from celeriac.protocol import ValidationError
from tests.brokers import SQS_URL, require, sqs_client_kwargs


@pytest.fixture
def raw() -> Iterator[Any]:
    require("sqs")
    client = boto3.client("sqs", **sqs_client_kwargs())
    made: list[str] = []
    client.made = made
    yield client
    for url in made:
        client.delete_queue(QueueUrl=url)
    client.close()


def _app(queue: str) -> App:
    return App("fifo", broker=SQS_URL, result_backend=None, task_default_queue=queue)


def _received(raw: Any, url: str, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(10):  # each receive waits up to a second; bounded
        got += raw.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["MessageGroupId", "MessageDeduplicationId"],
        ).get("Messages", [])
        if len(got) >= n:
            break
    return got


def test_group_and_deduplication_ids_reach_sqs_and_deduplicate(raw: Any) -> None:
    queue = f"t20-fifo-{uuid.uuid4().hex[:8]}.fifo"
    app = _app(queue)

    @app.task(name="fifo.job")
    def job(n: int) -> int:
        return n

    job.apply_async((1,), MessageGroupId="tenant-1", MessageDeduplicationId="order-1")
    url = raw.get_queue_url(QueueName=queue)["QueueUrl"]
    raw.made.append(url)
    # Another task, the same deduplication id within SQS's window: SQS drops it.
    job.apply_async((2,), MessageGroupId="tenant-1", MessageDeduplicationId="order-1")
    job.apply_async((3,), MessageGroupId="tenant-2")  # the id: <task id>-<retries>
    job.apply_async((4,))  # the group: the queue's name
    app.close()
    got = _received(raw, url, 3)
    seen = {
        m["Attributes"]["MessageGroupId"]: m["Attributes"]["MessageDeduplicationId"] for m in got
    }
    assert len(got) == 3 and set(seen) == {"tenant-1", "tenant-2", queue}, got
    assert seen["tenant-1"] == "order-1"
    assert seen["tenant-2"].endswith("-0")


def test_on_a_standard_queue_they_are_left_out_and_said_once(
    raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    queue = f"t20-std-{uuid.uuid4().hex[:8]}"
    app = _app(queue)
    with caplog.at_level(logging.WARNING, logger="celeriac.transports.sqs"):
        app.send_task("fifo.job", (1,), MessageGroupId="g", MessageDeduplicationId="d")
        app.send_task("fifo.job", (2,), MessageGroupId="g")
    url = raw.get_queue_url(QueueName=queue)["QueueUrl"]
    raw.made.append(url)
    app.close()
    assert len(_received(raw, url, 2)) == 2  # SQS refuses them on standard queues: not sent
    said = [r for r in caplog.records if "is a standard queue" in r.getMessage()]
    assert len(said) == 1


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (7, "must be a string"),
        ("", "1 to 128 characters"),
        ("x" * 129, "1 to 128 characters"),
        ("a b", "ASCII punctuation only"),
    ],
)
def test_bad_values_are_refused_before_sending(value: Any, says: str) -> None:
    app = App("fifo", broker="memory://fifo-bad", result_backend=None)
    with pytest.raises(ValidationError, match=says) as info:
        app.send_task("fifo.job", MessageGroupId=value)
    assert "MessageGroupId" in str(info.value)


def test_other_brokers_carry_them_as_properties_and_say_they_do_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App("fifo", broker="memory://fifo-other", result_backend=None)
    with caplog.at_level(logging.WARNING, logger="celeriac"):
        app.send_task("fifo.job", MessageGroupId="g")
        app.send_task("fifo.job", MessageGroupId="g")
    said = [r for r in caplog.records if "applies to SQS FIFO queues only" in r.getMessage()]
    assert len(said) == 1
