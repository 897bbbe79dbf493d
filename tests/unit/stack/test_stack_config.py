"""Generated Kafka, Mosquitto and Maven files, and the small helpers behind the stack."""

import re
from pathlib import Path

import pytest

from fleetlink.stack.kafka import new_cluster_id, runtime_pom, server_properties
from fleetlink.stack.mosquitto import BrokerTls, mosquitto_config
from fleetlink.stack.ports import free_port_block, port_is_free
from fleetlink.stack.prereq import parse_java_version


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def test_single_node_kraft_config(tmp_path: Path) -> None:
    props = properties(
        server_properties(
            node_id=1, kafka_ports=[9092], controller_ports=[19093], data_dir=tmp_path
        )
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"
    assert props["log.dirs"] == str(tmp_path)


def test_three_node_cluster_replicates_three_ways(tmp_path: Path) -> None:
    props = properties(
        server_properties(
            node_id=2,
            kafka_ports=[9092, 9093, 9094],
            controller_ports=[19093, 19094, 19095],
            data_dir=tmp_path,
        )
    )
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:19093,2@127.0.0.1:19094,3@127.0.0.1:19095"
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:19094"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["unclean.leader.election.enable"] == "false"


def test_mosquitto_config_queues_deep_and_persists(tmp_path: Path) -> None:
    text = mosquitto_config(
        port=1999,
        data_dir=tmp_path,
        log_file=tmp_path / "m.log",
        tls=BrokerTls(
            ca_file=tmp_path / "ca.pem",
            cert_file=tmp_path / "b.pem",
            key_file=tmp_path / "b.key",
            crl_file=tmp_path / "crl.pem",
            acl_file=tmp_path / "acl",
            password_file=tmp_path / "passwords",
        ),
        max_queued_messages=2_000_000,
        max_packet_bytes=1 << 20,
    )
    lines = set(text.splitlines())
    assert "listener 1999 127.0.0.1" in lines
    assert "persistence true" in lines
    assert f"persistence_location {tmp_path}/" in lines
    assert "max_queued_messages 2000000" in lines
    assert "max_queued_bytes 0" in lines
    assert f"log_dest file {tmp_path / 'm.log'}" in lines


def test_mosquitto_is_mutual_tls_only_with_identities_as_client_ids(tmp_path: Path) -> None:
    names = ("ca.pem", "b.pem", "b.key", "crl.pem", "acl", "passwords")
    files = [tmp_path / name for name in names]
    text = mosquitto_config(
        port=1999,
        data_dir=tmp_path,
        log_file=tmp_path / "m.log",
        tls=BrokerTls(*files),
        max_queued_messages=1000,
        max_packet_bytes=4096,
    )
    lines = text.splitlines()
    for line in (
        "allow_anonymous false",
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        f"acl_file {tmp_path / 'acl'}",
        f"cafile {tmp_path / 'ca.pem'}",
        f"crlfile {tmp_path / 'crl.pem'}",
        "max_packet_size 4096",
    ):
        assert line in lines
    # Listener options before the first ``listener`` line open a default listener on 1883.
    assert lines.index("listener 1999 127.0.0.1") < lines.index("use_username_as_clientid true")
    assert [line for line in lines if line.startswith("listener")] == ["listener 1999 127.0.0.1"]


def test_runtime_pom_names_the_pinned_kafka() -> None:
    pom = runtime_pom("4.1.1")
    assert "<artifactId>kafka_2.13</artifactId>" in pom
    assert "<artifactId>connect-mirror</artifactId>" in pom  # MM2 of the same version
    assert "<version>4.1.1</version>" in pom
    assert "log4j-slf4j-impl" in pom


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {new_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id) for cluster_id in ids)
    # kafka-storage would read "--cluster-id -x..." as an option (1 in 64 ids before the fix)
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]


@pytest.mark.parametrize(
    ("banner", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_402"', 8),
        ("garbage", 0),
    ],
)
def test_java_version_parsing(banner: str, major: int) -> None:
    assert parse_java_version(banner) == major


def test_free_port_block_is_free_and_consecutive() -> None:
    first = free_port_block(3)
    assert all(port_is_free(port) for port in range(first, first + 3))


def test_the_password_listener_is_tls_with_usernames_as_client_ids(tmp_path: Path) -> None:
    names = ("ca.pem", "b.pem", "b.key", "crl.pem", "acl", "passwords")
    tls = BrokerTls(*[tmp_path / name for name in names])
    common = {"data_dir": tmp_path, "log_file": tmp_path / "m.log", "tls": tls}
    lines = mosquitto_config(
        port=1999, password_port=2000, max_queued_messages=1000, max_packet_bytes=4096, **common
    ).splitlines()
    second = lines[lines.index("listener 2000 127.0.0.1") :]
    for line in (
        f"certfile {tmp_path / 'b.pem'}",
        "require_certificate false",
        "use_username_as_clientid true",
        f"password_file {tmp_path / 'passwords'}",
    ):
        assert line in second
    assert "allow_anonymous false" in lines
    without = mosquitto_config(
        port=1999, max_queued_messages=1000, max_packet_bytes=4096, **common
    ).splitlines()
    assert not [line for line in without if line.startswith(("password_file", "listener 2000"))]
