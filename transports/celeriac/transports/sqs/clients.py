"""botocore clients for SQS and STS, all made from one botocore session per process.

A botocore session holds the loader that parses the service models and the endpoint rules
(several MB of JSON turned into Python objects). boto3 builds a new session for each
``boto3.session.Session()``, so every client paid for its own copy: ~15-25 MB per transport
with its three clients. Made from one session, they share those models and a client costs
~0.2 MB. boto3 itself (its resources and s3transfer) is not imported.

botocore sessions are not thread-safe, so clients are made under a lock. As with boto3's
default session, credentials from the environment or ``~/.aws`` are read once per process
(refreshable ones, such as an instance role's, renew themselves).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import botocore.session

    from .options import Settings

__all__ = ["default_region", "make_client", "role_session", "shared_session"]

_lock = threading.Lock()
_session: botocore.session.Session | None = None
_pid = 0


def shared_session() -> botocore.session.Session:
    """This process's botocore session (made on first use; a new one after a fork)."""
    global _session, _pid
    with _lock:
        if _session is None or _pid != os.getpid():
            import botocore.session

            _session, _pid = botocore.session.get_session(), os.getpid()
        return _session


def default_region() -> str | None:
    """The region of the AWS environment or config file (``AWS_REGION``, ``~/.aws/config``)."""
    session = shared_session()
    with _lock:
        region = session.get_config_variable("region")
    return str(region) if region else None


def role_session(provider: Any) -> botocore.session.Session:
    """A session whose credentials come from ``provider`` first (an assumed role), sharing the
    process's parsed models."""
    import botocore.session

    shared = shared_session()
    session = botocore.session.get_session()
    with _lock:
        session.register_component("data_loader", shared.get_component("data_loader"))
    session.get_component("credential_provider").insert_before("env", provider)
    return session


def client(
    service: str,
    *,
    session: botocore.session.Session | None = None,
    **kwargs: Any,
) -> Any:
    """A botocore client of ``service`` made under the lock (``kwargs``: ``create_client``'s)."""
    session = session or shared_session()
    with _lock:
        return session.create_client(service, **kwargs)


def make_client(
    settings: Settings,
    *,
    retries: int = 4,
    long_polls: bool = True,
    session: botocore.session.Session | None = None,
) -> Any:
    """An SQS client (thread-safe; one per use, shared with the transport's threads).

    With ``session`` (an assumed role's), its credentials sign every call, not the URL's.

    Without ``long_polls`` every answer is due at once, so a read that hangs (a connection cut
    without a reset) is given up after a few seconds instead of the long-poll allowance.
    """
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        connect_timeout=settings.connect_timeout,
        # A long poll holds the request open for up to wait_time_seconds.
        read_timeout=settings.wait_time_seconds + 10 if long_polls else settings.connect_timeout,
        retries={"max_attempts": retries, "mode": "standard"},
        max_pool_connections=20,
    )
    if session is not None:
        return client("sqs", session=session, endpoint_url=settings.endpoint_url, config=config)
    return client(
        "sqs",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        config=config,
    )
