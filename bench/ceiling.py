"""The broker's limit and the practical limit of a Python worker, measured in the same run.

Raw: ``redis-benchmark`` LPUSH/RPOP pipelined 100 deep, and a bare pika loop (body only, and
with Celery's headers in the AMQP header table). Practical ceiling for a Python worker: the
same client library fetching the same Celery messages, decoding each with orjson (the
envelope and the body), calling an empty function and acking in batches: redis-py popping 100
at a time; pika consuming with prefetch 1,000 and an ack every 500.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import orjson

from celeriac.protocol import encode_task, new_task_message
from celeriac.protocol.envelopes import amqp as amqp_envelope
from celeriac.protocol.envelopes import json_envelope

from .common import AMQP_URL, REDIS_URL
from .transports import raw_pika, raw_redis


def _message() -> Any:
    return new_task_message("bench.noop", (), ignore_result=True)


def _empty(*args: Any, **kwargs: Any) -> None:
    return None


def redis_practical(count: int) -> float:
    """redis-py LPOP 100 at a time; orjson envelope and body; call an empty function."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    key = f"bench.ceiling.{uuid.uuid4().hex[:8]}"
    entry = json_envelope.pack_wire(encode_task(_message()), routing_key=key)
    pipe = client.pipeline(transaction=False)
    for i in range(0, count, 1000):
        pipe.lpush(key, *[entry] * min(1000, count - i))
    pipe.execute()
    done = 0
    start = time.perf_counter()
    while done < count:
        batch = client.rpop(key, 100)
        if not batch:
            break
        for raw in batch:
            envelope = orjson.loads(raw)
            body = orjson.loads(base64.b64decode(envelope["body"]))
            _empty(*body[0], **body[1])
        done += len(batch)
    rate = done / (time.perf_counter() - start)
    client.delete(key)
    client.close()
    return rate


def pika_publish_body_only(count: int) -> float:
    """A bare pika loop publishing the same body with no header table (Dramatiq's shape)."""
    import pika

    from celeriac.transports.amqp.connection import parameters

    body = encode_task(_message()).body
    queue = f"bench.raw.{uuid.uuid4().hex[:8]}"
    with pika.BlockingConnection(parameters(AMQP_URL)) as conn:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True)
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        start = time.perf_counter()
        for _ in range(count):
            ch.basic_publish("", queue, body, props)
        ch.queue_declare(queue, durable=True)  # a round trip: everything before it arrived
        rate = count / (time.perf_counter() - start)
        ch.queue_delete(queue)
    return rate


def pika_publish_confirmed(count: int) -> float:
    """A bare pika loop that waits for each publisher confirm (persistent messages, Celery's
    headers): the most a publisher that returns only once the broker has the message can do."""
    import pika

    from celeriac.transports.amqp.connection import parameters

    am = amqp_envelope.pack(_message())
    queue = f"bench.raw.{uuid.uuid4().hex[:8]}"
    with pika.BlockingConnection(parameters(AMQP_URL)) as conn:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True)
        ch.confirm_delivery()
        props = pika.BasicProperties(**am.properties)
        start = time.perf_counter()
        for _ in range(count):
            ch.basic_publish("", queue, am.body, props, mandatory=True)
        rate = count / (time.perf_counter() - start)
        ch.queue_delete(queue)
    return rate


def redis_one_by_one(count: int) -> float:
    """redis-py LPUSH of the same envelope, one command (and round trip) each: the most a
    publisher that returns only once Redis has the message can do from one connection."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    key = f"bench.ceiling.{uuid.uuid4().hex[:8]}"
    entry = json_envelope.pack_wire(encode_task(_message()), routing_key=key)
    start = time.perf_counter()
    for _ in range(count):
        client.lpush(key, entry)
    rate = count / (time.perf_counter() - start)
    client.delete(key)
    client.close()
    return rate


def pika_practical(count: int) -> float:
    """pika with prefetch 1,000: decode each body with orjson, call an empty function, ack
    every 500 (the messages carry Celery's headers, which pika decodes in pure Python)."""
    import pika

    from celeriac.transports.amqp.connection import parameters

    am = amqp_envelope.pack(_message())
    queue = f"bench.ceiling.{uuid.uuid4().hex[:8]}"
    with pika.BlockingConnection(parameters(AMQP_URL)) as conn:
        tx = conn.channel()  # a channel of its own: acks on a tx channel wait for a commit
        tx.queue_declare(queue, durable=True)
        tx.tx_select()
        props = pika.BasicProperties(**am.properties)
        for i in range(count):
            tx.basic_publish("", queue, am.body, props)
            if i % 1000 == 999:
                tx.tx_commit()
        tx.tx_commit()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=1000)
        done = 0
        start = time.perf_counter()
        for method, _props, body in ch.consume(queue, inactivity_timeout=5):
            if method is None:
                break
            args, kwargs, _embed = orjson.loads(body)
            _empty(*args, **kwargs)
            done += 1
            if done % 500 == 0 or done == count:
                ch.basic_ack(method.delivery_tag, multiple=True)
            if done == count:
                break
        rate = done / (time.perf_counter() - start)
        ch.cancel()
        ch.queue_delete(queue)
    return rate


def redis_raw(count: int) -> dict[str, float]:
    size = len(json_envelope.pack_wire(encode_task(_message())))
    lpush, rpop = raw_redis(max(count, 100_000), size)
    return {"raw_publish": lpush, "raw_consume": rpop}


def measure(broker: str, count: int) -> dict[str, float]:
    """Every ceiling figure for ``broker`` (redis or amqp), messages per second."""
    if broker == "redis":
        return {
            **redis_raw(count),
            "raw_publish_one_by_one": redis_one_by_one(min(count, 20_000)),
            "practical_drain": redis_practical(count),
        }
    publish, consume = raw_pika(count)
    return {
        "raw_publish": pika_publish_body_only(count),
        "raw_publish_headers": publish,
        "raw_publish_confirmed": pika_publish_confirmed(min(count, 5_000)),
        "raw_consume": consume,
        "practical_drain": pika_practical(count),
    }
