"""Kafka TLS and SASL settings (from the URL and options) and the idempotent producer."""

from __future__ import annotations

import uuid

import pytest

from celeriac.protocol import WireMessage
from celeriac.transports import QueueSpec, TransportError, open_transport
from celeriac.transports.kafka import KafkaTransport
from celeriac.transports.kafka.diagnosis import ConnectLog
from celeriac.transports.kafka.options import parse_options, security_config
from tests.brokers import KAFKA_URL, require
from tests.waiting import eventually


def config(url: str, **options: object) -> dict[str, object]:
    settings, _ = parse_options(url, options)
    return security_config(url, settings)


def test_plain_by_default() -> None:
    assert config("kafka://h:9092") == {"security_protocol": "PLAINTEXT"}


def test_a_user_in_the_url_means_sasl_with_its_password() -> None:
    got = config("kafka://alice:s%40cret@h:9092", sasl_mechanism="scram-sha-512")
    assert got == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": "s@cret",
    }


def test_tls_files_mean_ssl_and_with_a_user_sasl_ssl() -> None:
    got = config("kafka://alice:pw@h:9093", ssl_cafile="/ca.pem", ssl_check_hostname="false")
    assert got["security_protocol"] == "SASL_SSL"
    assert got["ssl_cafile"] == "/ca.pem" and got["ssl_check_hostname"] is False
    assert config("kafka://h:9093", ssl_cafile="/ca.pem")["security_protocol"] == "SSL"


def test_settings_that_contradict_each_other_are_refused() -> None:
    with pytest.raises(TransportError, match="needs a user name and password"):
        config("kafka://h:9092", security_protocol="SASL_SSL")
    with pytest.raises(TransportError, match="has a user name but security_protocol=PLAINTEXT"):
        config("kafka://u:p@h:9092", security_protocol="plaintext")
    with pytest.raises(TransportError, match="ssl_\\* files given"):
        config("kafka://h:9092", ssl_cafile="/ca.pem", security_protocol="PLAINTEXT")
    with pytest.raises(TransportError, match="sasl_mechanism='GSSAPI'"):
        config("kafka://u:p@h:9092", sasl_mechanism="GSSAPI")


def test_the_idempotent_producer_publishes_and_can_be_turned_off() -> None:
    require("kafka")
    queue = f"t20-idem-{uuid.uuid4().hex[:8]}"
    t = open_transport(KAFKA_URL, partitions=1)
    try:
        assert isinstance(t, KafkaTransport) and t._producer is not None
        assert t._producer.config["enable_idempotence"] is True
        t.declare_queue(QueueSpec(queue))
        t.publish(queue, WireMessage(b"[[], {}, {}]", "application/json", "utf-8", {"id": "1"}, {}))
        consumer = t.consumer([queue], prefetch=1)
        got = eventually(lambda: consumer.fetch(1, timeout=0.5), 30, "the published record")
        assert got[0].message is not None and got[0].message.headers["id"] == "1"
        consumer.ack(got)
        consumer.close()
    finally:
        t.close()
    off = open_transport(KAFKA_URL, enable_idempotence=False)
    try:
        assert isinstance(off, KafkaTransport) and off._producer is not None
        assert off._producer.config["enable_idempotence"] is False
    finally:
        off.close()


def test_a_failed_bootstrap_is_explained_from_what_kafka_python_logged() -> None:
    def cause(*messages: str, protocol: str = "SASL_SSL") -> str:
        log = ConnectLog()
        log.messages.extend(messages)
        return log.cause(protocol, "SCRAM-SHA-512")

    scram = "Connection lost: [Error 58] SaslAuthenticationFailedError: Authentication failed"
    assert "SASL SCRAM-SHA-512 authentication failed" in cause(scram)
    untrusted = "Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    assert "check ssl_cafile" in cause(untrusted)
    hung_up = "<KafkaConnection broker_version=(4, 0)>: KafkaConnectionError: socket disconnected"
    assert "closed the connection during SASL" in cause(hung_up)
    assert cause(hung_up, protocol="PLAINTEXT") == ""
    assert cause("<KafkaSSLTransport [x]>: Abort (socket disconnected)", protocol="SSL") == ""
