"""MirrorMaker 2's configuration from the topic list, pure: nothing mirrored both ways, every
mirrored topic's writer on its source side, and the properties MM2 reads back say so."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from fleetlink.contracts.topics import PRODUCTION_TOPICS, KafkaTopic, Site, spec_of
from fleetlink.settings.kafka import KafkaSettings
from fleetlink.settings.stack import MirrorSettings
from fleetlink.stack.mirror import (
    FLOWS,
    MirrorLoopError,
    check_flows,
    flows,
    mm2_properties,
    topics_pattern,
)

EDGE_TO_CLOUD, CLOUD_TO_EDGE = FLOWS


def java_properties(text: str) -> dict[str, str]:
    """``key = value`` lines as java.util.Properties reads them (the escapes we write)."""
    read = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" = ")
            read[key] = re.sub(r"\\(.)", r"\1", value)
    return read


def test_no_topic_flows_both_ways_and_each_flows_from_where_it_is_written() -> None:
    mirrored = flows(PRODUCTION_TOPICS)
    assert not set(mirrored[EDGE_TO_CLOUD]) & set(mirrored[CLOUD_TO_EDGE])
    for (source, _), names in mirrored.items():
        for name in names:
            topic = PRODUCTION_TOPICS.topic_of(name)
            assert topic is not None
            assert spec_of(topic).written_at is source, name
    staying = {t for t in KafkaTopic if not spec_of(t).mirrored}
    assert staying == {
        KafkaTopic.TICKS,
        KafkaTopic.AUDIT,
        KafkaTopic.PAYMENTS,
        KafkaTopic.CAMPAIGN_REQUESTS,  # read by the orchestrator only, in the cloud
        KafkaTopic.REPLICATION_ALERTS,  # each side writes about the flow into itself
    }
    assert len(mirrored[EDGE_TO_CLOUD]) + len(mirrored[CLOUD_TO_EDGE]) + len(staying) == len(
        KafkaTopic
    )
    # what the placement needs: the cars' data up, the commands and keys down
    assert {"fleet.telemetry", "fleet.command-status", "fleet.hazards"} <= set(
        mirrored[EDGE_TO_CLOUD]
    )
    assert {"fleet.commands", "fleet.grants"} <= set(mirrored[CLOUD_TO_EDGE])


def test_a_topic_in_both_directions_or_from_the_wrong_side_is_refused() -> None:
    mirrored = flows(PRODUCTION_TOPICS)
    looping = {
        EDGE_TO_CLOUD: mirrored[EDGE_TO_CLOUD],
        CLOUD_TO_EDGE: [*mirrored[CLOUD_TO_EDGE], "fleet.telemetry"],
    }
    with pytest.raises(MirrorLoopError, match="both ways"):
        check_flows(PRODUCTION_TOPICS, looping)
    backwards = {EDGE_TO_CLOUD: ["fleet.commands"], CLOUD_TO_EDGE: []}
    with pytest.raises(
        MirrorLoopError, match=re.escape("fleet.commands is not written at the edge")
    ):
        check_flows(PRODUCTION_TOPICS, backwards)


def test_the_properties_mirror_exactly_the_flows_read_committed_and_identically_named() -> None:
    topics = PRODUCTION_TOPICS.prefixed("run1")  # a test's own names: dots to escape
    kafka = KafkaSettings()
    text = mm2_properties(
        {Site.EDGE: kafka, Site.CLOUD: kafka},
        {Site.EDGE: "127.0.0.1:9092", Site.CLOUD: "127.0.0.1:9192"},
        topics,
        MirrorSettings(refresh_topics_s=2, offset_flush_ms=1000, tasks=3),
        replication_factor=1,
    )
    read = java_properties(text)
    assert read["clusters"] == "edge, cloud"
    assert read["replication.policy.class"].endswith(".IdentityReplicationPolicy")
    assert (read["edge->cloud.enabled"], read["cloud->edge.enabled"]) == ("true", "true")
    for alias in ("edge", "cloud"):
        assert read[f"{alias}.consumer.isolation.level"] == "read_committed"
        assert read[f"{alias}.producer.acks"] == "all"
        assert read[f"{alias}.producer.enable.idempotence"] == "true"
    assert read["cloud.bootstrap.servers"] == "127.0.0.1:9192"
    assert (read["refresh.topics.interval.seconds"], read["tasks.max"]) == ("2", "3")
    # a worker setting only counts in the target's properties (MM2 drops it elsewhere)
    assert "offset.flush.interval.ms" not in read
    assert read["cloud.offset.flush.interval.ms"] == "1000"
    assert read["edge.offset.flush.interval.ms"] == "1000"
    assert read["sync.group.offsets.enabled"] == "false"
    assert read["offset-syncs.topic.location"] == "target"  # not written over the WAN
    assert read["heartbeats.topic.replication.factor"] == "1"
    mirrored = flows(topics)
    for (source, target), names in mirrored.items():
        pattern = re.compile(read[f"{source.value}->{target.value}.topics"])
        matched = {name for name in topics.names() if pattern.fullmatch(name)}
        assert matched == set(names)  # exactly these: not the other side's, not a look-alike
        assert not pattern.fullmatch("run1xfleetxtelemetry")
        for name in names:  # another run's topics on the same stack flow the same way
            assert pattern.fullmatch(f"run2.{name}")
            assert not pattern.fullmatch(f"run2.{name}x")
    assert not re.compile(read["edge->cloud.topics"]).fullmatch("run2.fleet.commands")


def test_an_empty_flow_matches_nothing_and_sasl_reaches_mm2() -> None:
    assert re.fullmatch(topics_pattern([]), "") is None
    assert re.fullmatch(topics_pattern([]), "fleet.telemetry") is None
    secure = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="mm2",
        sasl_password=SecretStr('p"w\\d'),
    )
    read = java_properties(
        mm2_properties(
            {Site.EDGE: secure, Site.CLOUD: KafkaSettings()},
            {Site.EDGE: "edge:9093", Site.CLOUD: "cloud:9092"},
            PRODUCTION_TOPICS,
            MirrorSettings(),
            replication_factor=3,
        )
    )
    assert read["edge.security.protocol"] == "SASL_SSL"
    assert read["edge.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="mm2" password="p\\"w\\\\d";'
    )
    assert read["cloud.security.protocol"] == "PLAINTEXT"
    assert "cloud.sasl.jaas.config" not in read
