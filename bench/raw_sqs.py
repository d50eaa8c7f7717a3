"""The bare boto3 figure for the SQS transport: batch sends, then batch receives and deletes.

    python -m bench.raw_sqs [--count 20000]

Publishing is SendMessageBatch with 10 bodies of the given size per call; consuming is
ReceiveMessage (10 a call, no wait while messages are ready) followed by one
DeleteMessageBatch per receive. One thread, one client, like the transport: the least any
Celery-style SQS queue can cost on this server.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import boto3

from celeriac.protocol import new_task_message
from celeriac.protocol.envelopes import sqs as sqs_envelope

SQS_URL = os.environ.get("CELERIAC_TEST_SQS_URL", "sqs://x:x@127.0.0.1:9324")
SQS_ENDPOINT = os.environ.get("CELERIAC_TEST_SQS_ENDPOINT", "http://127.0.0.1:9324")
SQS_REGION = os.environ.get("CELERIAC_TEST_SQS_REGION", "elasticmq")
BATCH = 10


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _client() -> Any:
    parts = urlsplit(SQS_URL)
    return boto3.client(
        "sqs",
        endpoint_url=SQS_ENDPOINT,
        region_name=SQS_REGION,
        aws_access_key_id=parts.username or "x",
        aws_secret_access_key=parts.password or "x",
    )


def raw_sqs(count: int, payload: int) -> tuple[float, float]:
    """(publish, consume) msgs/s of a bare boto3 loop with ``payload``-character bodies."""
    client = _client()
    url = client.create_queue(QueueName=f"bench-raw-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    body = "x" * payload
    try:
        start = time.perf_counter()
        for i in range(0, count, BATCH):
            entries = [{"Id": str(j), "MessageBody": body} for j in range(min(BATCH, count - i))]
            client.send_message_batch(QueueUrl=url, Entries=entries)
        publish = _rate(count, time.perf_counter() - start)
        received = 0
        start = time.perf_counter()
        while received < count:
            got = client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=1
            ).get("Messages")
            if not got:
                raise RuntimeError(f"only {received} of {count} messages came back")
            entries = [
                {"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]} for j, m in enumerate(got)
            ]
            client.delete_message_batch(QueueUrl=url, Entries=entries)
            received += len(got)
        consume = _rate(received, time.perf_counter() - start)
        return publish, consume
    finally:
        client.delete_queue(QueueUrl=url)
        client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args(argv)
    payload = len(sqs_envelope.pack(new_task_message("bench.noop", (1, 2))))
    publish, consume = raw_sqs(args.count, payload)
    print(
        f"bare boto3, {args.count:,} messages of {payload} bytes: "
        f"publish {publish:,.0f} msg/s, consume {consume:,.0f} msg/s"
    )


if __name__ == "__main__":
    main()
