"""Edge and cloud Kafka linked by MirrorMaker 2, on real clusters: what crosses, what stays, and
a killed MM2 process losing nothing."""

from __future__ import annotations

import os
import threading
import time

import pytest
from confluent_kafka import Message

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.dedup import message_id
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.polling import wait_until
from fleetlink.contracts.topics import KafkaTopic, Site
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack, stack_status
from fleetlink.stack.link import LinkMode
from fleetlink.stack.mirror_run import mirror_name
from tests.support.edge_cloud import run_topics, send
from tests.support.gateway import wait_for_ids
from tests.support.stack import run_cli, stack_env

CUT_S = 6.0
CUT_SETTLE_S = 2.0


def by_id(records: list[Message]) -> dict[str, Message]:
    return {message_id(r.headers()) or "": r for r in records}


def test_records_cross_each_way_with_headers_and_order_and_nothing_comes_back(
    edge_cloud_stack: LocalStack,
) -> None:
    stack = edge_cloud_stack
    topics = run_topics(stack)
    edge, cloud = stack.bootstrap_servers(Site.EDGE), stack.bootstrap_servers(Site.CLOUD)
    telemetry, commands = topics[KafkaTopic.TELEMETRY], topics[KafkaTopic.COMMANDS]
    ticks = topics[KafkaTopic.TICKS]  # each cluster's own clock: never mirrored

    up_ids = send(stack, Site.EDGE, telemetry, 300)
    down_ids = send(stack, Site.CLOUD, commands, 60)
    send(stack, Site.EDGE, ticks, 10)

    arrived_up = wait_for_ids(cloud, telemetry, set(up_ids), timeout=45)
    arrived_down = wait_for_ids(edge, commands, set(down_ids), timeout=45)
    assert arrived_up.ids == set(up_ids)
    assert arrived_down.ids == set(down_ids)

    sources = by_id(read_topic(KafkaClients.at(edge), telemetry))
    for record in arrived_up.records:  # same partition, key, value, timestamp and headers
        source = sources[message_id(record.headers()) or ""]
        assert (record.partition(), record.key(), record.value()) == (
            source.partition(),
            source.key(),
            source.value(),
        )
        assert record.timestamp() == source.timestamp()
        assert record.headers() == source.headers()
    per_vin: dict[bytes, list[int]] = {}
    for record in sorted(arrived_up.records, key=lambda r: (r.partition(), r.offset())):
        per_vin.setdefault(record.key() or b"", []).append(int(dict(record.headers())["seq"]))
    assert all(seqs == sorted(seqs) for seqs in per_vin.values())  # per-VIN order kept

    time.sleep(3)  # three topic refreshes: time enough for anything to flow back
    assert len(read_topic(KafkaClients.at(edge), telemetry)) == len(up_ids)
    assert len(read_topic(KafkaClients.at(cloud), commands)) == len(down_ids)
    assert read_topic(KafkaClients.at(cloud), ticks) == []

    rows = {row.name: row for row in stack_status(stack)}
    for target in Site:
        mirror = rows[mirror_name(target)]
        assert mirror.running
        assert mirror.answers
        assert mirror.lag_s is not None
        assert mirror.lag_s < 10


def test_a_mirror_killed_mid_stream_loses_nothing_and_its_duplicates_collapse(
    edge_cloud_stack: LocalStack,
) -> None:
    stack = edge_cloud_stack
    topics = run_topics(stack)
    telemetry = topics[KafkaTopic.TELEMETRY]
    sent: list[str] = []
    stop = threading.Event()

    producer = KafkaClients.at(stack.bootstrap_servers(Site.EDGE)).producer()

    def drive() -> None:  # cars keep sending at the edge through the whole fault
        while not stop.is_set():
            sent.extend(send(stack, Site.EDGE, telemetry, 50, producer=producer))
            time.sleep(0.05)

    cloud = KafkaClients.at(stack.bootstrap_servers(Site.CLOUD))
    cars = threading.Thread(target=drive, daemon=True)
    cars.start()
    try:  # killed mid-stream: once it has copied a good part, while cars keep sending
        assert wait_until(lambda: len(read_topic(cloud, telemetry)) >= 300, 30, interval=0.2)
        killed = stack.kill(mirror_name(Site.CLOUD))  # kill -9
        copied_before = len(read_topic(cloud, telemetry))
        time.sleep(1)
        assert stack.start_component(killed.name).pid != killed.pid
        assert wait_until(lambda: (lag := stack.link.lag_s(Site.EDGE)) is not None and lag < 5, 60)
    finally:
        stop.set()
        cars.join(30)
    arrival = wait_for_ids(cloud.config["bootstrap.servers"], telemetry, set(sent), timeout=60)
    assert arrival.ids == set(sent)
    assert len(arrival.records) == len(sent) + arrival.duplicates  # nothing foreign
    # MM2 copies again only what it had copied since its last offset commit
    assert arrival.duplicates <= copied_before
    print(
        f"sent {len(sent)}; {copied_before} copied before kill -9 of MM2, "
        f"{arrival.duplicates} copied twice (collapsed by fl.msg_id)"
    )


@pytest.mark.parametrize("mode", [LinkMode.RESET, LinkMode.BLACKHOLE])
def test_a_cut_link_holds_both_ways_and_heals_without_loss(
    edge_cloud_stack: LocalStack, mode: LinkMode
) -> None:
    """The link is cut (MM2 and both clusters keep running) while cars send at the edge and the
    cloud sends commands: the edge keeps taking records, nothing crosses, and after healing
    every record has crossed once its duplicates collapse, per VIN in order."""
    stack = edge_cloud_stack
    topics = run_topics(stack)
    telemetry, commands = topics[KafkaTopic.TELEMETRY], topics[KafkaTopic.COMMANDS]
    edge = KafkaClients.at(stack.bootstrap_servers(Site.EDGE))
    cloud = KafkaClients.at(stack.bootstrap_servers(Site.CLOUD))
    up: list[str] = []
    down: list[str] = []
    stop = threading.Event()
    cars, operators = edge.producer(), cloud.producer()

    def traffic() -> None:
        while not stop.is_set():
            up.extend(send(stack, Site.EDGE, telemetry, 40, producer=cars))
            down.extend(send(stack, Site.CLOUD, commands, 5, producer=operators))
            time.sleep(0.1)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        assert wait_until(lambda: len(read_topic(cloud, telemetry)) >= 200, 30, interval=0.2)
        stack.link.cut(mode)
        time.sleep(CUT_SETTLE_S)  # what was in flight lands or is lost with the link
        crossed_at_cut = len(read_topic(cloud, telemetry)), len(read_topic(edge, commands))
        sent_at_cut = len(up)
        time.sleep(CUT_S)
        assert len(up) > sent_at_cut + 200  # the edge kept taking the cars' records
        assert (len(read_topic(cloud, telemetry)), len(read_topic(edge, commands))) == (
            crossed_at_cut  # and nothing crossed either way
        )
        healed_at = time.monotonic()
        stack.link.heal()
        time.sleep(2)
    finally:
        stop.set()
        sender.join(30)
    arrived_up = wait_for_ids(cloud.config["bootstrap.servers"], telemetry, set(up), timeout=60)
    arrived_down = wait_for_ids(edge.config["bootstrap.servers"], commands, set(down), timeout=30)
    caught_up_s = time.monotonic() - healed_at
    assert arrived_up.ids == set(up)
    assert arrived_down.ids == set(down)
    for arrival in (arrived_up, arrived_down):
        assert len(arrival.records) == len(arrival.ids) + arrival.duplicates
    per_vin: dict[bytes, list[int]] = {}
    for record in sorted(arrived_up.records, key=lambda r: (r.partition(), r.offset())):
        per_vin.setdefault(record.key() or b"", []).append(int(dict(record.headers())["seq"]))
    for seqs in per_vin.values():  # in order once duplicates collapse (first copy wins)
        firsts = list(dict.fromkeys(seqs))
        assert firsts == sorted(firsts)
    print(
        f"{mode}: {len(up)} up, {len(down)} down; caught up {caught_up_s:.1f} s after healing; "
        f"duplicates {arrived_up.duplicates} up, {arrived_down.duplicates} down"
    )


def test_the_cli_shows_both_sides_and_cuts_and_heals_the_link(
    edge_cloud_config: Settings, edge_cloud_stack: LocalStack
) -> None:
    env = {**os.environ, **stack_env(edge_cloud_config)}
    status = run_cli("stack", "status", env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    for shown in ("cloud-kafka-1", "mirror-edge", "mirror-cloud", "edge -> cloud", "lag", "link"):
        assert shown in status.stdout
    cut = run_cli("stack", "link", "cut", "--mode", "blackhole", env=env)
    assert cut.returncode == 0, cut.stdout + cut.stderr
    assert edge_cloud_stack.link.mode() is LinkMode.BLACKHOLE
    status = run_cli("stack", "status", env=env)
    assert status.returncode == 1  # the link does not answer
    assert "blackhole" in status.stdout
    healed = run_cli("stack", "link", "heal", env=env)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert edge_cloud_stack.link.mode() is LinkMode.UP
    wrong = run_cli("stack", "link", "cut", "--mode", "sideways", env=env)
    assert wrong.returncode == 2
    assert "sideways" in wrong.stderr + wrong.stdout
