"""Every Kafka client comes from one factory, with the security options of its cluster profile."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from fleetlink.adapters.kafka import clients as factory
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.commands.tracker import Tracker
from fleetlink.errors import ConfigError
from fleetlink.settings import Settings, load_settings

NOWHERE = "127.0.0.1:9"  # the discard port: clients are built, nothing is ever sent

SASL = {
    "bootstrap_servers": NOWHERE,
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "fleetlink",
    "sasl_password": "secret",
}


def two_profiles(tmp_path: Path) -> Settings:
    """``default`` on SASL without TLS; ``edge`` on TLS with a client certificate."""
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    for path in (ca, cert, key):
        path.write_text("")
    edge = {
        "bootstrap_servers": "127.0.0.1:19",
        "security_protocol": "SSL",
        "ssl_ca_location": str(ca),
        "ssl_certificate_location": str(cert),
        "ssl_key_location": str(key),
        "client_id": "edge-client",
    }
    return load_settings(stack={"state_dir": tmp_path}, kafka=SASL, clusters={"edge": edge})


def test_every_client_of_a_profile_carries_its_security_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = two_profiles(tmp_path)
    built: list[tuple[str, dict[str, Any]]] = []

    def recording(kind: str) -> Any:
        return lambda config: built.append((kind, dict(config)))

    for name in ("Producer", "Consumer", "AdminClient"):
        monkeypatch.setattr(factory, name, recording(name))
    monkeypatch.setattr(factory, "AsyncDeliveries", recording("AsyncDeliveries"))
    for cluster in ("default", "edge"):
        kafka = KafkaClients.of(settings, cluster)
        kafka.producer(linger_ms=1)
        kafka.deliveries(linger_ms=1)
        kafka.consumer("group", extra={"auto.offset.reset": "earliest"})
        kafka.reader()
        kafka.admin()
    assert [kind for kind, _ in built] == 2 * [
        "Producer",
        "AsyncDeliveries",
        "Consumer",
        "Consumer",
        "AdminClient",
    ]
    default, edge = built[:5], built[5:]
    for _, config in default:
        assert config["bootstrap.servers"] == NOWHERE
        assert config["security.protocol"] == "SASL_PLAINTEXT"
        assert (config["sasl.username"], config["sasl.password"]) == ("fleetlink", "secret")
        assert "ssl.ca.location" not in config
    for _, config in edge:
        assert config["bootstrap.servers"] == "127.0.0.1:19"
        assert config["security.protocol"] == "SSL"
        assert config["ssl.certificate.location"] == str(tmp_path / "cert.pem")
        assert config["client.id"] == "edge-client"
        assert "sasl.username" not in config
    producer = built[0][1]
    assert producer["enable.idempotence"] is True
    assert producer["acks"] == "all"
    reader = built[3][1]
    assert reader["enable.partition.eof"] is True
    assert reader["group.id"] != built[8][1]["group.id"]  # a group of its own each time


def test_a_reader_takes_the_whole_client_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(factory, "Consumer", lambda config: seen.append(dict(config)))
    KafkaClients({"bootstrap.servers": "k:9093", "security.protocol": "SASL_SSL"}).reader()
    KafkaClients.at("k:9092").reader()
    KafkaClients.at("k:9092").reader()
    assert seen[0]["security.protocol"] == "SASL_SSL"
    assert seen[0]["enable.auto.commit"] is False
    assert seen[1]["bootstrap.servers"] == "k:9092"
    assert seen[1]["group.id"] != seen[2]["group.id"]


def test_the_factory_builds_real_clients_for_both_profiles(tmp_path: Path) -> None:
    """librdkafka itself takes the settings (no client connects: nothing listens there)."""
    settings = load_settings(
        stack={"state_dir": tmp_path},
        kafka=SASL,
        clusters={"plain": {"bootstrap_servers": "127.0.0.1:19"}},
    )
    for cluster in ("default", "plain"):
        kafka = KafkaClients.of(settings, cluster)
        assert isinstance(kafka.producer(message_timeout_ms=1000), Producer)
        consumer = kafka.reader()
        assert isinstance(consumer, Consumer)
        consumer.close()
        assert isinstance(kafka.admin(), AdminClient)
    quix = KafkaClients.of(settings).quix_connection()
    assert quix["sasl.mechanism"] == "SCRAM-SHA-512"
    assert "client.id" not in quix
    # Quix Streams' own model of the connection takes it whole; the rest is client tuning
    from quixstreams.kafka.configuration import ConnectionConfig

    assert ConnectionConfig.from_librdkafka_dict(quix).sasl_mechanism == "SCRAM-SHA-512"
    assert KafkaClients.of(settings).quix_tuning() == {"socket.nagle.disable": "true"}


def test_an_unknown_cluster_profile_is_refused_by_name(tmp_path: Path) -> None:
    settings = load_settings(stack={"state_dir": tmp_path})
    with pytest.raises(ConfigError, match="no Kafka cluster profile 'cloud'"):
        KafkaClients.of(settings, "cloud")


def test_the_tracker_restores_its_state_with_sasl_and_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug of issue 12: the restore read Kafka with the bare address, no credentials."""
    settings = load_settings(stack={"state_dir": tmp_path}, kafka=SASL)
    seen: list[dict[str, Any]] = []

    class _RecordedError(Exception):
        pass

    def consumer(config: dict[str, Any]) -> None:
        seen.append(config)
        raise _RecordedError

    tracker = Tracker(settings, logging.getLogger("test.tracker"))
    monkeypatch.setattr(factory, "Consumer", consumer)
    with pytest.raises(_RecordedError):
        tracker._restore()
    assert seen[0]["security.protocol"] == "SASL_PLAINTEXT"
    assert seen[0]["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (seen[0]["sasl.username"], seen[0]["sasl.password"]) == ("fleetlink", "secret")
