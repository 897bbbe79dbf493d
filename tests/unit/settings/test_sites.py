"""Where a process runs (``site``) picks its Kafka cluster: a settings profile, no code."""

from pathlib import Path

import pytest

from fleetlink.adapters.runner import ProcessRecord
from fleetlink.contracts.topics import Site
from fleetlink.errors import ConfigError
from fleetlink.settings import load_settings
from fleetlink.stack.clusters import local_clusters
from fleetlink.stack.state import StackState


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_on_the_local_edge_cloud_stack_each_site_reaches_its_own_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEETLINK_STACK__TOPOLOGY", "edge-cloud")
    edge = load_settings()
    assert edge.site is None
    assert edge.here is Site.EDGE
    assert edge.kafka_bootstrap_servers() == "127.0.0.1:9092"
    monkeypatch.setenv("FLEETLINK_SITE", "cloud")
    cloud = load_settings()
    assert cloud.kafka_bootstrap_servers() == "127.0.0.1:9192"
    assert cloud.sites() == [Site.EDGE, Site.CLOUD]
    assert cloud.at_site(Site.EDGE).kafka_client_config()["bootstrap.servers"] == "127.0.0.1:9092"


def test_a_single_stack_has_one_cluster_whatever_the_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLINK_SITE", "cloud")
    settings = load_settings()
    assert settings.kafka_bootstrap_servers() == "127.0.0.1:9092"
    assert settings.sites() == [Site.CLOUD]


def test_two_external_clusters_are_named_by_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLINK_SITE", "cloud")
    clusters = {
        "edge": {"bootstrap_servers": "edge.example:9092"},
        "cloud": {"bootstrap_servers": "cloud.example:9092", "security_protocol": "SSL"},
    }
    cloud = load_settings(clusters=clusters)
    assert not cloud.uses_local_kafka
    assert cloud.kafka_client_config()["bootstrap.servers"] == "cloud.example:9092"
    assert cloud.kafka_client_config()["security.protocol"] == "SSL"
    assert cloud.at_site(Site.EDGE).kafka_client_config()["bootstrap.servers"] == (
        "edge.example:9092"
    )
    assert cloud.sites() == [Site.EDGE, Site.CLOUD]


def test_cloud_ports_that_overlap_the_edge_stop_at_start_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match=r"stack: .*cloud cluster.s ports overlap"):
        load_settings(stack={"topology": "edge-cloud", "cloud_kafka_port": 9092})
    monkeypatch.setenv("FLEETLINK_SITE", "moon")
    with pytest.raises(ConfigError, match=r"site: .*FLEETLINK_SITE"):
        load_settings()


def test_the_stack_tells_nodes_of_each_cluster_and_mirrors_apart(tmp_path: Path) -> None:
    settings = load_settings(stack={"topology": "edge-cloud", "brokers": 3})
    edge, cloud = local_clusters(settings.stack, tmp_path, settings.stack.topology)
    assert edge.owns("kafka-2")
    assert not edge.owns("cloud-kafka-2")
    assert cloud.owns("cloud-kafka-3")
    assert not cloud.owns("kafka-3")
    assert not edge.owns("mirror-edge")
    assert cloud.node_id("cloud-kafka-3") == 3
    assert cloud.bootstrap_servers() == "127.0.0.1:9192,127.0.0.1:9193,127.0.0.1:9194"
    names = ["mosquitto", "kafka-1", "cloud-kafka-1", "mirror-edge", "mirror-cloud"]
    state = StackState(
        cluster_id="x",
        brokers=1,
        processes=[ProcessRecord(name=n, pid=1, marker="", log="", port=1) for n in names],
    )
    assert [p.name for p in state.kafka()] == ["kafka-1", "cloud-kafka-1"]
    assert [p.name for p in state.mirrors()] == ["mirror-edge", "mirror-cloud"]
