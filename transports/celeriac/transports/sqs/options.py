"""The ``sqs://`` URL and options: credentials, endpoint, region, timeouts (SPEC.md §6.4)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import TransportError
from ..registry import redact_url
from .clients import default_region

__all__ = ["Settings", "parse_settings"]

_LOCAL_HOSTS = frozenset(("localhost", "127.0.0.1", "::1"))
_TRUE = frozenset(("1", "true", "yes", "on"))
_AWS_HOST = re.compile(
    r"(?:sqs(?:-fips)?\.|)([a-z]{2}(?:-[a-z]+)+-\d+)(?:\.queue)?\.amazonaws\.com(?:\.cn)?"
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the transport needs to know, read from the URL and the options."""

    #: ``None``: botocore's own endpoint for the region (real AWS).
    endpoint_url: str | None
    #: ``host:port`` for messages, or ``"AWS SQS (<region>)"``.
    address: str
    region: str
    access_key: str | None
    secret_key: str | None
    queue_name_prefix: str
    #: How long a received message stays invisible to others; renewed while it is held.
    visibility_timeout: int
    #: ``VisibilityTimeout`` of the queues we create (Kombu's 1800 s, for Kombu consumers that
    #: share them and renew nothing).
    queue_visibility_timeout: int
    #: Longest ``WaitTimeSeconds`` of one long poll (SQS allows 20).
    wait_time_seconds: int
    #: Receives after which SQS moves a message to the dead-letter queue (RedrivePolicy);
    #: 0: no redrive policy.
    max_receive_count: int
    #: ``MessageGroupId`` for FIFO queues when the message names none.
    message_group_id: str | None
    #: Lease of a broadcast subscriber queue; renewed every third of it while it lives.
    subscriber_lease: float
    #: Seconds before a request that cannot connect gives up.
    connect_timeout: float
    #: Kombu's ``predefined_queues``: queue name -> its URL (``{"url": ...}``); with them, no
    #: ListQueues or CreateQueue call is made and no other queue can be used.
    predefined_queues: dict[str, str] = field(default_factory=dict)
    #: Kombu's ``sts_role_arn``: an IAM role whose temporary credentials make every SQS call
    #: (assumed with the URL's keys, else boto3's usual ones).
    sts_role_arn: str | None = None
    #: Kombu's ``sts_token_timeout``: seconds the role's credentials last (900 to 43200).
    sts_token_timeout: int = 900
    #: Kombu's ``sts_token_buffer_time``: new credentials are fetched this many seconds before
    #: the old ones expire (Kombu's default is 0, at expiry; ours is a minute ahead).
    sts_token_buffer_time: float = 60.0


def _number(options: dict[str, Any], key: str, default: float) -> float:
    value = options.pop(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TransportError(f"sqs:// option {key}={value!r} is not a number") from None


def parse_settings(url: str, options: dict[str, Any]) -> Settings:
    """Read the URL and options (keyword options override query parameters)."""
    parts = urlsplit(url)
    merged: dict[str, Any] = dict(parse_qsl(parts.query))
    merged.update(options)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise TransportError(
            f"bad SQS URL {redact_url(url)!r} ({exc}); write it as "
            "sqs://access_key:secret@host:port or sqs:// for AWS"
        ) from None
    region = str(merged.pop("region", "") or _region_of(host) or _default_region())
    secure_default = host is not None and host not in _LOCAL_HOSTS
    secure = str(merged.pop("is_secure", secure_default)).lower() in _TRUE
    endpoint = merged.pop("endpoint_url", None)
    if endpoint is None and host is not None:
        scheme = "https" if secure else "http"
        endpoint = f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    address = (
        f"{host}:{port or (443 if secure else 80)}"
        if host is not None
        else (urlsplit(str(endpoint)).netloc if endpoint else f"AWS SQS ({region})")
    )
    settings = Settings(
        endpoint_url=str(endpoint) if endpoint else None,
        address=address,
        region=region,
        access_key=unquote(parts.username) if parts.username else None,
        secret_key=unquote(parts.password) if parts.password else None,
        queue_name_prefix=str(merged.pop("queue_name_prefix", "")),
        visibility_timeout=max(1, round(_number(merged, "visibility_timeout", 60))),
        queue_visibility_timeout=round(_number(merged, "queue_visibility_timeout", 1800)),
        wait_time_seconds=min(20, max(0, round(_number(merged, "wait_time_seconds", 20)))),
        max_receive_count=round(_number(merged, "max_receive_count", 10)),
        message_group_id=merged.pop("message_group_id", None),
        subscriber_lease=_number(merged, "subscriber_lease", 60),
        connect_timeout=_number(merged, "connect_timeout", 5),
        predefined_queues=_predefined(merged.pop("predefined_queues", None)),
        **_sts(merged),
    )
    if merged:
        raise TransportError(
            f"unknown sqs:// option(s) {', '.join(sorted(merged))}; known: region, is_secure, "
            "endpoint_url, queue_name_prefix, visibility_timeout, queue_visibility_timeout, "
            "wait_time_seconds, max_receive_count, message_group_id, subscriber_lease, "
            "connect_timeout, predefined_queues, sts_role_arn, sts_token_timeout, "
            "sts_token_buffer_time"
        )
    return settings


def _sts(options: dict[str, Any]) -> dict[str, Any]:
    """The STS options, checked: a role ARN, a lifetime STS grants, a buffer shorter than it."""
    role = options.pop("sts_role_arn", None)
    timeout = round(_number(options, "sts_token_timeout", 900))
    buffer = _number(options, "sts_token_buffer_time", 60)
    if role is None:
        return {}
    if not isinstance(role, str) or not role.startswith("arn:"):
        raise TransportError(
            f"sqs:// option sts_role_arn={role!r}: expected a role ARN, "
            "arn:aws:iam::<account>:role/<name>"
        )
    if not 900 <= timeout <= 43200:
        raise TransportError(
            f"sqs:// option sts_token_timeout={timeout}: STS grants 900 to 43200 seconds"
        )
    if not 0 <= buffer < timeout:
        raise TransportError(
            f"sqs:// option sts_token_buffer_time={buffer:g}: must be 0 or more and less than "
            f"sts_token_timeout ({timeout})"
        )
    return {"sts_role_arn": role, "sts_token_timeout": timeout, "sts_token_buffer_time": buffer}


def _predefined(value: Any) -> dict[str, str]:
    """Kombu's ``predefined_queues`` (``{name: {"url": ...}}``) as name -> URL. Per-queue
    credentials and backoff policies are Kombu's and refused (one set of credentials here)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TransportError(f"sqs:// option predefined_queues must be a dict, not {value!r}")
    urls: dict[str, str] = {}
    for name, entry in value.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise TransportError(
                f"sqs:// predefined_queues[{name!r}] must be a dict with the queue's 'url'"
            )
        extra = sorted(set(entry) - {"url"})
        if extra:
            raise TransportError(
                f"sqs:// predefined_queues[{name!r}]: {', '.join(extra)} not supported here "
                "(credentials come from the URL or the AWS environment, for every queue)"
            )
        urls[str(name)] = entry["url"]
    return urls


def _region_of(host: str | None) -> str | None:
    """The region an AWS endpoint's host name carries (``sqs.eu-west-1.amazonaws.com``)."""
    match = _AWS_HOST.fullmatch(host or "")
    return match.group(1) if match else None


def _default_region() -> str:
    # botocore reads AWS_REGION / AWS_DEFAULT_REGION and ~/.aws/config.
    return default_region() or "us-east-1"
