"""One smoke test per broker: each proves the broker answers its ordinary Python client.

Start the brokers with ``scripts/services up``.  A broker that is not running makes its
test FAIL (see ``tests.brokers.require``); nothing here is ever skipped.
"""

from __future__ import annotations

import time

import pytest

from tests.brokers import REDIS_URL, amqp_params, require, sqs_client_kwargs, unique

pytestmark = pytest.mark.broker

BODY = b'{"task": "celeriac.smoke", "args": [1, 2]}'


def test_redis_push_pop() -> None:
    import redis

    require("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    key = unique("celeriac-smoke")
    try:
        assert client.lpush(key, BODY, b"second") == 2
        assert client.rpop(key) == BODY
        assert client.brpop([key], timeout=2) == (key.encode(), b"second")
        assert client.llen(key) == 0
        assert client.brpop([key], timeout=1) is None
    finally:
        client.delete(key)
        client.close()


def test_rabbitmq_publish_basic_get() -> None:
    import pika

    require("rabbitmq")
    amqp = amqp_params()
    params = pika.ConnectionParameters(
        host=amqp.host,
        port=amqp.port,
        virtual_host=amqp.vhost,
        credentials=pika.PlainCredentials(amqp.user, amqp.password),
        socket_timeout=5,
        blocked_connection_timeout=10,
    )
    connection = pika.BlockingConnection(params)
    queue = unique("celeriac-smoke")
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(queue, durable=False, auto_delete=False)
        try:
            channel.basic_publish(
                exchange="",
                routing_key=queue,
                body=BODY,
                properties=pika.BasicProperties(
                    content_type="application/json",
                    headers={"task": "celeriac.smoke", "id": queue},
                ),
                mandatory=True,
            )
            # The publish is confirmed, so the message is in the queue; basic_get may still
            # race the queue process by a few ms, hence a short bounded retry.
            deadline = time.monotonic() + 10
            method = None
            while method is None and time.monotonic() < deadline:
                method, props, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    connection.process_data_events(time_limit=0.1)
            assert method is not None, f"message published to {queue!r} never arrived"
            assert body == BODY
            assert props.content_type == "application/json"
            assert props.headers == {"task": "celeriac.smoke", "id": queue}
            channel.basic_ack(method.delivery_tag)
            assert channel.queue_declare(queue, passive=True).method.message_count == 0
        finally:
            channel.queue_delete(queue)
    finally:
        connection.close()


def test_sqs_create_send_receive_delete() -> None:
    import boto3

    require("sqs")
    sqs = boto3.client("sqs", **sqs_client_kwargs())
    name = unique("celeriac-smoke")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    try:
        assert name in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [""])[0]
        sent = sqs.send_message(
            QueueUrl=url,
            MessageBody=BODY.decode(),
            MessageAttributes={"task": {"DataType": "String", "StringValue": "celeriac.smoke"}},
        )
        received = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=5,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        assert [m["MessageId"] for m in received] == [sent["MessageId"]]
        msg = received[0]
        assert msg["Body"] == BODY.decode()
        assert msg["MessageAttributes"]["task"]["StringValue"] == "celeriac.smoke"
        sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert attrs == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }
    finally:
        sqs.delete_queue(QueueUrl=url)


@pytest.mark.timeout(120)
# kafka-python 3.0 loads its protocol schemas with importlib.resources' legacy API
@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:open_text is deprecated:DeprecationWarning")
def test_kafka_produce_consume_in_group() -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    broker = require("kafka")
    bootstrap = broker.address
    topic = unique("celeriac-smoke")
    group = unique("celeriac-smoke-group")

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", request_timeout_ms=20000, max_block_ms=20000
        )
        try:
            sent = producer.send(
                topic, key=b"smoke", value=BODY, headers=[("task", b"celeriac.smoke")]
            ).get(timeout=30)
        finally:
            producer.close(timeout=10)
        assert sent.topic == topic

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            request_timeout_ms=30000,
        )
        try:
            records = []
            deadline = time.monotonic() + 60  # covers the group join and first fetch
            while not records and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=1000).values():
                    records.extend(batch)
            assert records, f"nothing consumed from {topic!r} within 60 s"
            (record,) = records
            assert (record.key, record.value, record.offset) == (b"smoke", BODY, sent.offset)
            assert list(record.headers) == [("task", b"celeriac.smoke")]
            tp = TopicPartition(topic, sent.partition)
            assert tp in consumer.assignment()  # the group coordinator assigned it
            consumer.commit()
            assert consumer.committed(tp) == sent.offset + 1
        finally:
            consumer.close()
    finally:
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()


def test_zookeeper_create_get_delete_and_queue() -> None:
    from kazoo.client import KazooClient
    from kazoo.recipe.queue import LockingQueue

    broker = require("zookeeper")
    zk = KazooClient(hosts=broker.address, timeout=10)
    zk.start(timeout=20)
    root = f"/celeriac-smoke/{unique('run')}"
    try:
        path = zk.create(f"{root}/node", BODY, makepath=True)
        data, stat = zk.get(path)
        assert data == BODY
        assert stat.version == 0
        zk.set(path, b"changed")
        assert zk.get(path)[0] == b"changed"
        zk.delete(path)
        assert zk.exists(path) is None

        queue = LockingQueue(zk, f"{root}/queue")
        queue.put(BODY)
        assert queue.get(timeout=10) == BODY
        assert queue.consume() is True
        assert len(queue) == 0
    finally:
        zk.delete(root, recursive=True)
        zk.stop()
        zk.close()
