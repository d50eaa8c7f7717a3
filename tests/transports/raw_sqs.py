"""Raw injection for the contract suite: bytes that are no envelope, put straight on a queue."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import boto3

from celeriac.protocol.envelopes import sqs as envelope
from tests.brokers import SQS_REGION


def inject(url: str, queue: str, raw: bytes) -> None:
    """Send ``raw`` as an SQS message body on ``queue``, base64-encoded as Kombu writes bodies
    (SQS bodies are text, so arbitrary bytes only travel that way)."""
    parts = urlsplit(url)
    client = boto3.client(
        "sqs",
        endpoint_url=f"http://{parts.hostname}:{parts.port}",
        region_name=SQS_REGION,
        aws_access_key_id=parts.username or "x",
        aws_secret_access_key=parts.password or "x",
    )
    try:
        queue_url = client.get_queue_url(QueueName=envelope.queue_name(queue))["QueueUrl"]
        client.send_message(QueueUrl=queue_url, MessageBody=base64.b64encode(raw).decode())
    finally:
        client.close()
