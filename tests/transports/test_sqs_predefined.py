"""SQS ``predefined_queues`` (Kombu's option): queues used by URL, never listed or created."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import boto3
import pytest

from celeriac.protocol import WireMessage
from celeriac.transports import QueueSpec, TransportError, open_transport
from tests.brokers import SQS_ENDPOINT, SQS_REGION, SQS_URL, require
from tests.waiting import eventually


@pytest.fixture
def sqs() -> Iterator[object]:
    require("sqs")
    client = boto3.client(
        "sqs",
        endpoint_url=SQS_ENDPOINT,
        region_name=SQS_REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    made: list[str] = []
    yield client, made
    for url in made:
        client.delete_queue(QueueUrl=url)


def test_predefined_queues_are_used_by_url_and_nothing_is_created(
    sqs: tuple[object, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    client, made = sqs
    real = f"t20-real-{uuid.uuid4().hex[:8]}"
    url = client.create_queue(QueueName=real)["QueueUrl"]  # type: ignore[attr-defined]
    made.append(url)
    alias = f"t20-alias-{uuid.uuid4().hex[:8]}"  # our name for it differs from SQS's
    t = open_transport(SQS_URL, predefined_queues={alias: {"url": url}})
    try:
        t.declare_queue(QueueSpec(alias))
        t.publish(alias, WireMessage(b"[[], {}, {}]", "application/json", "utf-8", {"id": "1"}, {}))
        consumer = t.consumer([alias], prefetch=1)
        got = eventually(lambda: consumer.fetch(1, timeout=1.0), 20, "the message")
        assert got[0].message is not None and got[0].message.headers["id"] == "1"
        consumer.ack(got)
        consumer.close()
        names = client.list_queues(QueueNamePrefix="t20-alias-")  # type: ignore[attr-defined]
        assert not names.get("QueueUrls")  # nothing was created under our name
        with pytest.raises(TransportError, match="not one of the predefined_queues"):
            t.publish("other", WireMessage(b"[]", "application/json", "utf-8", {}, {}))
        with caplog.at_level(logging.WARNING, logger="celeriac.transports.sqs"):
            sub = t.subscribe("celery.pidbox")
            assert sub.get(timeout=0.05) is None
        assert any("broadcasts on 'celery.pidbox'" in r.getMessage() for r in caplog.records)
    finally:
        t.close()


def test_malformed_predefined_queues_are_refused() -> None:
    with pytest.raises(TransportError, match="must be a dict with the queue's 'url'"):
        open_transport(SQS_URL, predefined_queues={"q": "https://sqs/q"})
    with pytest.raises(TransportError, match="access_key_id not supported here"):
        open_transport(SQS_URL, predefined_queues={"q": {"url": "u", "access_key_id": "k"}})
