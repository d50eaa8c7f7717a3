"""``sts_role_arn`` (Kombu's option): the role is assumed through boto3's real STS client, here
against moto's STS server on a local port (no AWS), and its credentials sign the SQS calls
(ElasticMQ) and are renewed before they expire. What moto cannot show (AWS's IAM checks, a
real role's trust policy) is untested: docs/production.md says so."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from celeriac.protocol import WireMessage
from celeriac.transports import BrokerUnavailable, TransportError
from celeriac.transports.sqs import SQSTransport
from tests.brokers import SQS_URL, require
from tests.waiting import eventually

moto_server = pytest.importorskip(
    "moto.server", reason="needs moto's STS server: pip install 'moto[server]' (the dev extra)"
)
ROLE = "arn:aws:iam::123456789012:role/celeriac-test"


@pytest.fixture(scope="module")
def sts_endpoint() -> Iterator[str]:
    """moto's server, all of its services on one local port; boto3 finds its STS endpoint in
    AWS_ENDPOINT_URL_STS, as it would a real deployment's VPC endpoint."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def sts(sts_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    require("sqs")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts_endpoint)
    return sts_endpoint


def wire(n: int) -> WireMessage:
    return WireMessage(b"[[], {}, {}]", "application/json", "utf-8", {"id": str(n)}, {})


def test_the_role_is_assumed_and_its_credentials_sign_every_call(sts: str) -> None:
    t = SQSTransport(SQS_URL, sts_role_arn=ROLE, sts_token_timeout=1800)
    t.connect()
    try:
        assert t.role is not None and t.role.calls == 1
        frozen = t.role.session.get_credentials().get_frozen_credentials()
        assert frozen.token and frozen.access_key != "x"  # STS's, not the URL's "x"
        queue = f"t20-sts-{uuid.uuid4().hex[:8]}"
        t.publish(queue, wire(1))
        assert t.queue_length(queue) == 1
        assert t.role.calls == 1  # far from expiry: no new AssumeRole
        t.client.delete_queue(QueueUrl=t.client.get_queue_url(QueueName=queue)["QueueUrl"])
    finally:
        t.close()


def test_credentials_are_renewed_before_they_expire(
    sts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 900 s credentials, renewed from 899.5 s before expiry: the next call after half a second
    # must assume the role again, before signing.
    t = SQSTransport(SQS_URL, sts_role_arn=ROLE, sts_token_buffer_time=899.5)
    t.connect()
    try:
        role = t.role
        assert role is not None
        # moto may hand the same key to the same role session twice, so the check is that the
        # session signs with what the latest AssumeRole returned, not that the key changed.
        issued: list[str] = []
        assume = role._sts.assume_role

        def spy(**kwargs: object) -> dict[str, object]:
            got = assume(**kwargs)
            issued.append(got["Credentials"]["AccessKeyId"])
            return got  # type: ignore[no-any-return]

        monkeypatch.setattr(role._sts, "assume_role", spy)
        queue = f"t20-sts-{uuid.uuid4().hex[:8]}"
        t.publish(queue, wire(1))

        def renewed() -> bool:
            t.queue_length(queue)  # a signed call: botocore asks the credentials first
            return role.calls >= 2

        eventually(renewed, 10, "a second AssumeRole", interval=0.1)
        again = role.session.get_credentials().get_frozen_credentials().access_key
        assert issued and again == issued[-1]
        assert t.queue_length(queue) == 1  # signed with the renewed credentials
        t.client.delete_queue(QueueUrl=t.client.get_queue_url(QueueName=queue)["QueueUrl"])
    finally:
        t.close()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"sts_role_arn": "celeriac-test"}, "expected a role ARN"),
        ({"sts_role_arn": ROLE, "sts_token_timeout": 60}, "900 to 43200"),
        ({"sts_role_arn": ROLE, "sts_token_buffer_time": 900}, "less than sts_token_timeout"),
    ],
)
def test_bad_sts_options_are_refused(options: dict[str, object], says: str) -> None:
    with pytest.raises(TransportError, match=says):
        SQSTransport(SQS_URL, **options)  # type: ignore[arg-type]


def test_an_sts_that_refuses_names_the_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1")
    t = SQSTransport(SQS_URL, sts_role_arn=ROLE, connect_timeout=1)
    with pytest.raises(BrokerUnavailable, match="could not assume role 'arn:aws:iam::"):
        t.connect()
