"""Read what Celery put on a broker, byte for byte, with plain clients (no Kombu consumer).

Each reader purges a queue before a case and then drains it, returning one dict per message
in the JSON-friendly ``wire`` shape of the vector format:

* Redis: ``{"queue", "key", "payload"}``; the key is the list the entry sat in (Kombu files a
  message with a non-zero priority under ``<queue>\\x06\\x16<step>``).
* AMQP: ``{"exchange", "routing_key", "redelivered", "body_b64", "properties"}`` from py-amqp's
  ``basic_get``.
* SQS: ``{"queue", "queue_name", "body", "message_attributes"}`` from boto3's
  ``receive_message``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import time
from typing import Any
from urllib.parse import unquote, urlparse

#: Kombu's Redis transport separator between a queue name and its priority step.
REDIS_PRIORITY_SEP = "\x06\x16"
#: Every key a message for ``queue`` can sit in (``priority_steps`` default 0, 3, 6, 9; all 0-9
#: are checked so a changed step list is still found).
REDIS_PRIORITY_SUFFIXES = ("", *(f"{REDIS_PRIORITY_SEP}{n}" for n in range(1, 10)))


class RedisReader:
    envelope = "redis"

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)

    def keys_for(self, queue: str) -> list[str]:
        return [queue + suffix for suffix in REDIS_PRIORITY_SUFFIXES]

    def purge(self, queue: str) -> None:
        self.client.delete(*self.keys_for(queue))

    def drain(self, queue: str, expected: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while True:
            for key in self.keys_for(queue):
                # LPUSH puts the newest entry at the head: RPOP yields them in send order.
                while (raw := self.client.rpop(key)) is not None:
                    found.append({"queue": queue, "key": key, "payload": _text(raw)})
            if len(found) >= expected or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def close(self) -> None:
        self.client.close()


class AmqpReader:
    envelope = "amqp"

    def __init__(self, url: str) -> None:
        import amqp

        parsed = urlparse(url)
        vhost = unquote(parsed.path[1:]) if parsed.path not in ("", "/") else "/"
        self.conn = amqp.Connection(
            host=f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 5672}",
            userid=unquote(parsed.username or "guest"),
            password=unquote(parsed.password or "guest"),
            virtual_host=vhost or "/",
        )
        self.conn.connect()
        self.channel = self.conn.channel()

    def purge(self, queue: str) -> None:
        # Deleting is the purge that also forgets the queue's arguments: Celery declares it
        # again, as it wants it, when the case publishes.
        self.channel.queue_delete(queue)

    def drain(self, queue: str, expected: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while True:
            msg = self._get(queue)
            if msg is not None:
                found.append(msg)
                continue
            if len(found) >= expected or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def _get(self, queue: str) -> dict[str, Any] | None:
        import amqp

        try:
            msg = self.channel.basic_get(queue, no_ack=True)
        except amqp.exceptions.NotFound:
            self.channel = self.conn.channel()
            return None
        if msg is None:
            return None
        body = msg.body
        if isinstance(body, str):  # py-amqp hands back bytes, but be exact if not
            body = body.encode(msg.properties.get("content_encoding") or "utf-8")
        props = {k: _jsonable(v) for k, v in msg.properties.items()}
        if "application_headers" in props:
            props["headers"] = props.pop("application_headers")
        info = msg.delivery_info
        return {
            "exchange": info.get("exchange", ""),
            "routing_key": info.get("routing_key", ""),
            "redelivered": bool(info.get("redelivered", False)),
            "body_b64": base64.b64encode(body).decode("ascii"),
            "properties": dict(sorted(props.items())),
        }

    def close(self) -> None:
        self.conn.close()


class SqsReader:
    envelope = "sqs"

    def __init__(self, endpoint: str, region: str, key: str, secret: str) -> None:
        import boto3

        self.client = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    @staticmethod
    def canonical_name(queue: str) -> str:
        """The SQS queue name Kombu uses for a Celery queue name ('.' -> '-', others -> '_')."""
        out = []
        for ch in queue:
            if ch == ".":
                out.append("-")
            elif ch.isascii() and (ch.isalnum() or ch in "-_"):
                out.append(ch)
            else:
                out.append("_")
        return "".join(out)

    def _url(self, queue: str) -> str | None:
        try:
            return self.client.get_queue_url(QueueName=self.canonical_name(queue))["QueueUrl"]
        except self.client.exceptions.QueueDoesNotExist:
            return None

    def purge(self, queue: str) -> None:
        url = self._url(queue)
        if url is not None:
            self.client.purge_queue(QueueUrl=url)

    def drain(self, queue: str, expected: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while len(found) < expected and time.monotonic() < deadline:
            url = self._url(queue)
            if url is None:
                time.sleep(0.1)
                continue
            resp = self.client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            )
            for m in resp.get("Messages", []):
                self.client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                found.append(
                    {
                        "queue": queue,
                        "queue_name": self.canonical_name(queue),
                        "body": m["Body"],
                        "message_attributes": _jsonable(m.get("MessageAttributes", {})),
                    }
                )
        return found

    def close(self) -> None:
        self.client.close()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8")


def _jsonable(value: Any) -> Any:
    """AMQP/SQS values as JSON: tables recurse, bytes become base64, decimals strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return {"__bytes_b64__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return {"__decimal__": str(value)}
    if isinstance(value, dt.datetime | dt.date):
        return {"__datetime__": value.isoformat()}
    return value
