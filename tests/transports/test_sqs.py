"""SQS-specific behaviour (SPEC.md §6.4) on the real ElasticMQ: Kombu's names and bodies, batches,
held visibility, long delays, FIFO queues, dead letters, leased broadcast queues, limits and
errors, and real Celery 5.7 (Kombu's own SQS transport) on the same queues both ways.
"""

from __future__ import annotations

import base64
import json
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import orjson
import pytest
import redis

from celeriac.protocol import WireMessage, decode_task, encode_task, new_task_message
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.envelopes import sqs as envelope
from celeriac.transports import (
    REJECT_REASON_HEADER,
    BrokerUnavailable,
    Delivery,
    QueueSpec,
    TransportError,
    dead_letter_queue,
    resolve,
)
from celeriac.transports.sqs import SQSTransport
from celeriac.transports.sqs.broadcast import LEASE_TAG
from interop import celery_env
from tests.brokers import REDIS_URL, SQS_REGION, SQS_URL, require, sqs_client_kwargs, unique
from tests.waiting import eventually

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "interop" / "capture"


def wire(n: int, **options: Any) -> WireMessage:
    return encode_task(new_task_message("sqs.task", (n,), **options))


def number(delivery: Delivery) -> int:
    assert delivery.message is not None, delivery.error
    value = decode_task(delivery.message).args[0]
    assert isinstance(value, int)
    return value


@pytest.fixture
def raw() -> Iterator[Any]:
    require("sqs")
    client = boto3.client("sqs", **sqs_client_kwargs())
    yield client
    client.close()


@pytest.fixture
def make(raw: Any) -> Iterator[Any]:
    """Open transports on the test server; closed, and every queue they made deleted, after."""
    opened: list[SQSTransport] = []
    names: set[str] = set()

    def make_transport(url: str = SQS_URL, **options: Any) -> SQSTransport:
        transport = SQSTransport(url, **options)
        transport.connect()
        opened.append(transport)
        return transport

    yield make_transport
    for transport in opened:
        if transport._queues is not None:
            names.update(q.url for q in transport._queues._cache.values())
        transport.close()
    for url in names:
        try:
            raw.delete_queue(QueueUrl=url)
        except raw.exceptions.QueueDoesNotExist:
            pass


def url_of(raw: Any, sqs_name: str) -> str:
    return str(raw.get_queue_url(QueueName=sqs_name)["QueueUrl"])


def receive_raw(raw: Any, url: str, wait: int = 5) -> list[dict[str, Any]]:
    got = raw.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )  # one bounded long poll
    return list(got.get("Messages") or [])


def calls(transport: SQSTransport) -> Counter[str]:
    """Count the SQS operations ``transport``'s client makes from now on."""
    counted: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counted[model.name] += 1

    transport.client.meta.events.register("before-call.sqs.*", count)
    return counted


# -- names, bodies, attributes --------------------------------------------------------------------
def test_queue_names_follow_kombu_with_prefix_and_dead_letter_queue(make: Any, raw: Any) -> None:
    stem = unique("naming")
    transport = make(queue_name_prefix="pre.")
    transport.declare_queue(QueueSpec(f"{stem}.a:b"))
    sqs_name = f"pre-{stem}-a_b"
    attributes = raw.get_queue_attributes(QueueUrl=url_of(raw, sqs_name), AttributeNames=["All"])
    policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert policy["deadLetterTargetArn"].endswith(f":{sqs_name}-dlq")
    assert int(policy["maxReceiveCount"]) == 10
    assert attributes["Attributes"]["VisibilityTimeout"] == "1800"  # Kombu's, for Kombu peers
    assert url_of(raw, f"{sqs_name}-dlq").endswith(f"{sqs_name}-dlq")
    with pytest.raises(TransportError, match="not a valid SQS queue name"):
        transport.declare_queue(QueueSpec("q" * 90))


def test_body_is_base64_of_kombus_envelope_and_raw_json_is_read_too(make: Any, raw: Any) -> None:
    transport = make()
    queue = unique("body")
    transport.declare_queue(QueueSpec(queue))
    sent = wire(1)
    transport.publish(queue, sent)
    (message,) = receive_raw(raw, url_of(raw, queue))
    env = orjson.loads(base64.b64decode(message["Body"], validate=True))
    assert list(env) == ["body", "content-encoding", "content-type", "headers", "properties"]
    assert base64.b64decode(env["body"]) == sent.body
    assert env["properties"]["delivery_info"] == {"exchange": "", "routing_key": queue}
    raw.delete_message(QueueUrl=url_of(raw, queue), ReceiptHandle=message["ReceiptHandle"])
    # Some clients send the envelope as JSON text: read it as well.
    raw.send_message(
        QueueUrl=url_of(raw, queue), MessageBody=json_envelope.pack_wire(wire(2)).decode()
    )
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = eventually(lambda: consumer.fetch(1, timeout=1), what="raw JSON body")
        assert number(delivery) == 2 and not delivery.redelivered
        consumer.ack([delivery])


# -- batches --------------------------------------------------------------------------------------
def test_more_than_ten_go_in_batches_of_ten(make: Any) -> None:
    transport = make()
    queue = unique("batches")
    transport.declare_queue(QueueSpec(queue))
    counted = calls(transport)
    transport.publish_many(queue, [wire(i) for i in range(25)])
    assert counted["SendMessageBatch"] == 3 and counted["SendMessage"] == 0
    assert transport.queue_length(queue) == 25
    with transport.consumer([queue], prefetch=25) as consumer:
        counted.clear()
        got: list[Delivery] = []
        got += eventually(lambda: consumer.fetch(25, timeout=2), what="a first batch")
        while len(got) < 25:
            got += consumer.fetch(25 - len(got), timeout=2)
        assert counted["ReceiveMessage"] <= 5  # 10 a call (plus an empty tail at most)
        counted.clear()
        consumer.ack(got)
        assert counted["DeleteMessageBatch"] == 3 and counted["DeleteMessage"] == 0
    assert sorted(number(d) for d in got) == list(range(25))
    assert transport.queue_length(queue) == 0


def test_no_queue_of_a_consumer_is_preferred(make: Any) -> None:
    transport = make()
    first, second = unique("first"), unique("second")
    for queue in (first, second):
        transport.declare_queue(QueueSpec(queue))
        transport.publish_many(queue, [wire(i) for i in range(10)])
    with transport.consumer([first, second], prefetch=5) as consumer:
        seen: list[str] = []
        for _ in range(2):
            batch = eventually(lambda: consumer.fetch(5, timeout=1), what="a batch")
            seen += [d.queue for d in batch]
            consumer.ack(batch)
    assert set(seen) == {first, second}


def test_a_queue_name_sqs_cannot_take_is_a_clear_error(make: Any) -> None:
    transport = make()
    with pytest.raises(TransportError, match="not a valid SQS queue name"):
        transport.consumer(["x" * 81])
    with pytest.raises(TransportError, match="not a valid SQS queue name"):
        transport.publish("x" * 81, wire(1))


# -- visibility -----------------------------------------------------------------------------------
def test_a_held_delivery_stays_invisible_long_past_its_timeout(make: Any, raw: Any) -> None:
    transport = make(visibility_timeout=1)
    queue = unique("held")
    transport.declare_queue(QueueSpec(queue))
    transport.publish(queue, wire(4))
    url = url_of(raw, queue)
    with transport.consumer([queue], prefetch=1) as consumer:
        (held,) = eventually(lambda: consumer.fetch(1, timeout=1), what="the delivery")
        until = time.monotonic() + 4  # four visibility timeouts
        while time.monotonic() < until:
            assert receive_raw(raw, url, wait=1) == []  # renewed by the heartbeat thread
        consumer.ack([held])
    assert (
        raw.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessagesNotVisible"
        ]
        == "0"
    )


def test_requeue_makes_it_visible_at_once_and_counts_a_receive(make: Any, raw: Any) -> None:
    transport = make()
    queue = unique("requeue")
    transport.declare_queue(QueueSpec(queue))
    transport.publish(queue, wire(6))
    with transport.consumer([queue], prefetch=1) as consumer:
        (first,) = eventually(lambda: consumer.fetch(1, timeout=1), what="the delivery")
        consumer.requeue(first)
    (again,) = receive_raw(raw, url_of(raw, queue), wait=2)
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


# -- delays ---------------------------------------------------------------------------------------
def test_delays_past_900_seconds_use_sqs_maximum_and_a_due_time(make: Any, raw: Any) -> None:
    transport = make()
    queue = unique("long-delay")
    transport.declare_queue(QueueSpec(queue))
    sent: list[dict[str, Any]] = []
    transport.client.meta.events.register(
        "before-parameter-build.sqs.SendMessage", lambda params, **_: sent.append(dict(params))
    )
    before = time.time()
    transport.publish(queue, wire(1), delay=3600)
    (params,) = sent
    assert params["DelaySeconds"] == 900
    due = float(params["MessageAttributes"][envelope.DELIVER_AT_ATTRIBUTE]["StringValue"])
    assert before + 3600 <= due <= time.time() + 3600
    attributes = raw.get_queue_attributes(QueueUrl=url_of(raw, queue), AttributeNames=["All"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert transport.queue_length(queue) == 0


def test_a_message_not_yet_due_is_sent_on_not_delivered(make: Any, raw: Any) -> None:
    transport = make()
    queue = unique("re-delay")
    transport.declare_queue(QueueSpec(queue))
    due = time.time() + 2.0
    # What the last 900 s hop of a long delay looks like when it arrives 2 s early.
    raw.send_message(
        QueueUrl=url_of(raw, queue),
        MessageBody=envelope.pack_wire(wire(8), queue),
        MessageAttributes={
            envelope.DELIVER_AT_ATTRIBUTE: {"DataType": "Number", "StringValue": repr(due)}
        },
    )
    with transport.consumer([queue], prefetch=1) as consumer:
        assert consumer.fetch(1, timeout=1.0) == []  # received, not due: sent on, delayed
        (delivery,) = eventually(lambda: consumer.fetch(1, timeout=1), what="the due message")
        arrived = time.time()
        consumer.ack([delivery])
    assert number(delivery) == 8
    assert due <= arrived <= due + 1.5


def test_purge_sends_a_message_between_delay_hops_on(make: Any, raw: Any) -> None:
    transport = make()
    queue = unique("purge-hop")
    transport.declare_queue(QueueSpec(queue))
    url = url_of(raw, queue)
    raw.send_message(
        QueueUrl=url,
        MessageBody=envelope.pack_wire(wire(8), queue),
        MessageAttributes={
            envelope.DELIVER_AT_ATTRIBUTE: {
                "DataType": "Number",
                "StringValue": repr(time.time() + 60),
            }
        },
    )
    transport.publish(queue, wire(1))
    assert transport.purge(queue) == 1
    attributes = raw.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert attributes["ApproximateNumberOfMessages"] == "0"


# -- FIFO -----------------------------------------------------------------------------------------
def test_fifo_queues_get_group_and_deduplication_ids(make: Any, raw: Any) -> None:
    transport = make(message_group_id="")
    queue = unique("jobs") + ".fifo"
    transport.declare_queue(QueueSpec(queue))
    first = wire(1)
    transport.publish(queue, first)
    transport.publish(queue, first)  # the same task id and retry count: a duplicate
    retried = WireMessage(
        first.body,
        first.content_type,
        first.content_encoding,
        {**first.headers, "retries": 1},
        first.properties,
    )  # a retry of the same task is no duplicate
    transport.publish(queue, retried)
    grouped = wire(2)
    grouped.headers["MessageGroupId"] = "tenant-7"
    transport.publish(queue, grouped)
    assert transport.queue_length(queue) == 3
    got = receive_raw(raw, url_of(raw, queue), wait=1)
    got += receive_raw(raw, url_of(raw, queue), wait=1)
    ids = {
        (m["Attributes"]["MessageGroupId"], m["Attributes"]["MessageDeduplicationId"]) for m in got
    }
    task_id = first.headers["id"]
    assert ids == {
        (queue, f"{task_id}-0"),
        (queue, f"{task_id}-1"),
        ("tenant-7", f"{grouped.headers['id']}-0"),
    }  # the group defaults to the queue's SQS name


def test_fifo_dead_letters_go_to_a_fifo_queue_and_delays_are_refused(make: Any, raw: Any) -> None:
    transport = make()
    stem = unique("fifo-dlq")
    queue = f"{stem}.fifo"
    transport.declare_queue(QueueSpec(queue))
    transport.publish(queue, wire(5))
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = eventually(lambda: consumer.fetch(1, timeout=1), what="the delivery")
        consumer.reject(delivery, "unknown-task: sqs.task")
    (dead,) = receive_raw(raw, url_of(raw, f"{stem}-dlq.fifo"))
    wire_dead, _ = envelope.unpack_wire(dead["Body"])
    assert wire_dead.headers[REJECT_REASON_HEADER] == "unknown-task: sqs.task"
    with pytest.raises(TransportError, match=r"FIFO queue .* no per-message delay"):
        transport.publish(queue, wire(6), delay=5)


# -- dead letters ---------------------------------------------------------------------------------
def test_reject_carries_the_reason_as_header_and_attribute(make: Any, raw: Any) -> None:
    transport = make()
    queue = unique("reject")
    transport.declare_queue(QueueSpec(queue))
    transport.publish(queue, wire(3))
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = eventually(lambda: consumer.fetch(1, timeout=1), what="the delivery")
        consumer.reject(delivery, "invalid-message: body: not a triple")
    (dead,) = receive_raw(raw, url_of(raw, f"{queue}-dlq"))
    attribute = dead["MessageAttributes"][envelope.REJECT_REASON_ATTRIBUTE]["StringValue"]
    assert attribute == "invalid-message: body: not a triple"
    wire_dead, _ = envelope.unpack_wire(dead["Body"])
    assert wire_dead.headers[REJECT_REASON_HEADER] == attribute
    assert transport.queue_length(queue) == 0
    assert transport.queue_length(dead_letter_queue(queue)) == 0  # we hold it in receive_raw


def test_reject_goes_to_the_dead_letter_queue_the_spec_names(make: Any, raw: Any) -> None:
    transport = make()
    queue, graveyard = unique("custom"), unique("graveyard.dlq")
    transport.declare_queue(QueueSpec(queue, dead_letter=graveyard))
    policy = raw.get_queue_attributes(QueueUrl=url_of(raw, queue), AttributeNames=["All"])
    assert policy["Attributes"]["RedrivePolicy"].count(envelope.queue_name(graveyard)) == 1
    transport.publish(queue, wire(2))
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = eventually(lambda: consumer.fetch(1, timeout=1), what="the delivery")
        consumer.reject(delivery, "unknown-task: sqs.task")
    assert transport.queue_length(graveyard) == 1


# -- broadcast ------------------------------------------------------------------------------------
def test_subscriber_queues_are_leased_and_lapsed_ones_deleted(make: Any, raw: Any) -> None:
    exchange = unique("bcast")
    transport = make(subscriber_lease=60)
    live = transport.subscribe(exchange)
    dead = transport.subscribe(exchange)
    raw.tag_queue(QueueUrl=dead.url, Tags={LEASE_TAG: repr(time.time() - 1)})  # as if it died
    prefix = envelope.broadcast_queue_prefix(exchange)
    assert sorted(raw.list_queues(QueueNamePrefix=prefix)["QueueUrls"]) == sorted(
        [live.url, dead.url]
    )
    assert float(raw.list_queue_tags(QueueUrl=live.url)["Tags"][LEASE_TAG]) > time.time() + 50
    transport.broadcast(exchange, wire(9))
    got = live.get(timeout=5)
    assert got is not None and decode_task(got).args == (9,)
    assert raw.list_queues(QueueNamePrefix=prefix).get("QueueUrls") == [live.url]
    live.close()
    assert not raw.list_queues(QueueNamePrefix=prefix).get("QueueUrls")


def test_a_subscriber_whose_queue_vanished_gets_a_new_one(make: Any, raw: Any) -> None:
    exchange = unique("vanish")
    transport = make()
    with transport.subscribe(exchange) as subscription:
        raw.delete_queue(QueueUrl=subscription.url)  # as a broadcaster does once a lease lapsed
        assert subscription.get(timeout=1.0) is None
        transport.broadcast(exchange, wire(5))
        got = subscription.get(timeout=5)
        assert got is not None and decode_task(got).args == (5,)


def test_an_exchange_whose_name_starts_another_does_not_reach_its_subscribers(make: Any) -> None:
    exchange = unique("ex")
    transport = make()
    with transport.subscribe(exchange + "-b") as other, transport.subscribe(exchange) as mine:
        transport.broadcast(exchange, wire(1))
        assert mine.get(timeout=0) is not None  # a zero timeout still looks once
        assert other.get(timeout=1.0) is None


# -- limits and errors ----------------------------------------------------------------------------
def test_oversize_messages_fail_at_publish_naming_the_limit(make: Any) -> None:
    transport = make()
    queue = unique("big")
    transport.declare_queue(QueueSpec(queue))
    big = encode_task(new_task_message("sqs.task", ("x" * 200_000,)))
    with pytest.raises(TransportError, match=r"262144-byte limit; compress it or pass a reference"):
        transport.publish(queue, big)
    with pytest.raises(TransportError, match=r"262144-byte limit"):
        transport.publish_many(queue, [wire(1), big])
    assert transport.queue_length(queue) == 0  # nothing of the batch went out


def test_a_wrong_endpoint_names_the_host_and_hides_the_secret() -> None:
    url = "sqs://x:s3cret@127.0.0.1:1"
    with pytest.raises(BrokerUnavailable) as info:
        resolve(url)(url, region=SQS_REGION).connect()
    text = str(info.value)
    assert "127.0.0.1:1" in text and "s3cret" not in text and "running" in text


def test_url_and_options() -> None:
    local = SQSTransport("sqs://AK:se%2Fcret@localhost:9324?region=eu-west-1&queue_name_prefix=p-")
    s = local.settings
    assert (s.endpoint_url, s.region, s.access_key, s.secret_key) == (
        "http://localhost:9324",
        "eu-west-1",
        "AK",
        "se/cret",
    )
    assert s.queue_name_prefix == "p-" and s.visibility_timeout == 60
    remote = SQSTransport("sqs://sqs.example.com", region="us-west-2", visibility_timeout="30")
    assert remote.settings.endpoint_url == "https://sqs.example.com"
    assert remote.settings.visibility_timeout == 30
    by_host = SQSTransport("sqs://AK:S@sqs.eu-west-1.amazonaws.com")
    assert by_host.settings.region == "eu-west-1"
    assert by_host.settings.endpoint_url == "https://sqs.eu-west-1.amazonaws.com"
    aws = SQSTransport("sqs://", region="ap-south-1")
    assert aws.settings.endpoint_url is None and aws.settings.access_key is None
    with pytest.raises(TransportError, match=r"unknown sqs:// option.*visibilty_timeout"):
        SQSTransport("sqs://?visibilty_timeout=3")
    assert SQSTransport.capabilities.priorities is False


# -- real Celery 5.7 (Kombu's SQS transport) on the same queues -----------------------------------
CELERY_SEND = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from interop_app import make_app
    app = make_app(sys.argv[1], sqs_region=sys.argv[4])
    print(app.send_task("interop.add", args=(7, 8), queue=sys.argv[2]).id)
    """
)


def _kombu_url() -> str:
    return SQS_URL.rstrip("/") + "//"


@pytest.mark.celery
def test_celery_client_to_our_consumer(make: Any, tmp_path: Path) -> None:
    celery_env.ensure(quiet=True)
    script = tmp_path / "send.py"
    script.write_text(CELERY_SEND)
    queue = unique("celery.to.us")
    transport = make()
    transport.declare_queue(QueueSpec(queue))
    proc = celery_env.run_script(script, _kombu_url(), queue, str(APP_DIR), SQS_REGION, timeout=120)
    task_id = proc.stdout.strip().splitlines()[-1]
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = eventually(lambda: consumer.fetch(1, timeout=1), what="Celery's task")
        message = decode_task(delivery.message)
        consumer.ack([delivery])
    assert (message.task, message.id, message.args) == ("interop.add", task_id, (7, 8))


@pytest.mark.celery
def test_our_message_runs_on_a_celery_worker(make: Any) -> None:
    require("redis")
    celery_env.ensure(quiet=True)
    queue = unique("us.to.celery")
    message = new_task_message("interop.add", (2, 3))
    transport = make()
    backend_url = REDIS_URL.rsplit("/", 1)[0] + "/1"
    backend = redis.Redis.from_url(backend_url)
    try:
        transport.declare_queue(QueueSpec(queue))
        transport.publish(queue, encode_task(message))
        with celery_env.CeleryWorker(
            APP_DIR,
            "interop_app",
            broker_url=_kombu_url(),
            backend_url=backend_url,
            queues=[queue],
            env={"CELERIAC_SQS_REGION": SQS_REGION},
        ) as worker:
            stored = eventually(
                lambda: cast("bytes | None", backend.get(f"celery-task-meta-{message.id}")),
                timeout=60,
                what="Celery's result",
                detail=lambda: f"worker log: {worker.log()[-2000:]}",
            )
        record = json.loads(stored)
        assert (record["status"], record["result"]) == ("SUCCESS", 5)
        assert transport.queue_length(queue) == 0
    finally:
        backend.delete(f"celery-task-meta-{message.id}")
        backend.close()
