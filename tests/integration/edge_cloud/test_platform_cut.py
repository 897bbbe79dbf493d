"""The platform split between edge and cloud, its link cut while cars drive and commands flow:
the edge keeps serving, a command that expires in the cloud during the cut never runs, and after
the heal the cloud holds every car's every record, in order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.dedup import message_id
from fleetlink.adapters.kafka.headers import header_value
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.polling import wait_until
from fleetlink.contracts import headers as h
from fleetlink.contracts.delivery import SEQ_PROPERTY
from fleetlink.contracts.geo import cell_of
from fleetlink.contracts.topics import KafkaTopic, MqttTopic, Site
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from fleetlink.stack.link import LinkMode
from fleetlink.vehicle.agent import VehicleAgent
from tests.support.apps import AppPlatform, app_platform, now_ms, running_app, send_event
from tests.support.commands import FINAL, Platform, command_platform
from tests.support.polling import eventually
from tests.support.stack import mqtt_client

CARS = 4
SPOT = (52.47, 13.52)


def vin(n: int) -> str:
    return f"ECCUT0000000{n:05d}"


def test_a_cut_link_while_cars_drive_and_commands_flow(
    edge_cloud_config: Settings, edge_cloud_stack: LocalStack, tmp_path: Path
) -> None:
    stack = edge_cloud_stack
    with (
        command_platform(tmp_path, edge_cloud_config) as platform,
        running_app(_hazards_at_the_edge(tmp_path, platform), "hazards") as hazards,
    ):
        topics = platform.settings.topic_map()
        edge = KafkaClients.at(stack.bootstrap_servers(Site.EDGE))
        cloud = KafkaClients.at(stack.bootstrap_servers(Site.CLOUD))
        cars = [platform.start_car(vin(n)) for n in range(CARS)]  # seen online in the cloud
        stop = threading.Event()

        def drive() -> None:
            while not stop.is_set():
                for car in cars:
                    platform.garage.drive(car.vin)
                stop.wait(0.1)

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        try:
            # a command before the cut goes all the way: API (cloud) -> car -> tracker (edge)
            before = platform.post(vin(0), name="honk")
            assert before.status_code == 202, before.text
            assert platform.wait_state(before.json()["command_id"], FINAL)["state"] == "succeeded"
            # one for a car that is away: it crosses to the edge and waits there
            platform.stop_car(vin(3))
            waiting = platform.post(vin(3), name="honk", ttl_s=120).json()["command_id"]
            eventually(lambda: _has(edge, topics[KafkaTopic.COMMANDS], waiting), 15, "at edge")

            stack.link.cut(LinkMode.BLACKHOLE)
            eventually(lambda: _lagging(platform), 15, "the API to see the edge unreachable")
            doomed = platform.post(vin(1), name="honk", ttl_s=3)  # expires during the cut
            doomed_at = time.monotonic()
            assert doomed.status_code == 202, doomed.text
            assert doomed.json()["awaiting_edge"] is True
            telemetry_at_cut = len(read_topic(edge, topics[KafkaTopic.TELEMETRY]))
            # the edge keeps serving: the away car comes back and gets what waited for it
            platform.garage.start(vin(3))
            eventually(lambda: platform.garage.agents[vin(3)].executor.executed == 1, 20, "run")
            # and cars braking hard at one spot warn the cars near it, with no cloud hop
            warnings = MqttTopic.geo_warnings_filter(cell_of(*SPOT))
            with mqtt_client(edge_cloud_config, subscribe=warnings) as (_, nearby):
                producer = edge.producer()
                for reporter in ("ECHAZ000000000001", "ECHAZ000000000002", "ECHAZ000000000003"):
                    send_event(
                        producer,
                        topics[KafkaTopic.EVENTS],
                        reporter,
                        "harsh-braking",
                        now_ms(),
                        SPOT,
                    )
                assert producer.flush(10) == 0
                warned = nearby.wait_for(1, 20)
            assert [m.topic.startswith("geo/") for m in warned] == [True]
            time.sleep(max(0.0, 3.5 - (time.monotonic() - doomed_at)))  # its expires_at passes
            assert len(read_topic(edge, topics[KafkaTopic.TELEMETRY])) > telemetry_at_cut
        finally:
            stack.link.heal()
        time.sleep(2)
        stop.set()
        driver.join(10)
        # after the heal: what the edge did reaches the cloud, what expired stays undone
        assert platform.wait_state(waiting, FINAL, timeout=30)["state"] == "succeeded"
        doomed_id = doomed.json()["command_id"]
        assert platform.wait_state(doomed_id, FINAL, timeout=30)["state"] == "expired"
        assert platform.garage.agents[vin(1)].executor.executed == 0  # checked at the car
        uplink = [KafkaTopic.TELEMETRY, KafkaTopic.EVENTS, KafkaTopic.COMMAND_RESPONSES]
        _every_record_reached_the_cloud(cloud, [topics[t] for t in uplink], cars)
        assert hazards.poll() is None


def _hazards_at_the_edge(tmp_path: Path, platform: Platform) -> AppPlatform:
    """The hazards app on the platform's topics, at the edge (its site)."""
    return app_platform(tmp_path, platform.settings, own_topics=False)


def _has(clients: KafkaClients, topic: str, command_id: str) -> bool:
    return any(command_id.encode() in (r.value() or b"") for r in read_topic(clients, topic))


def _lagging(platform: Platform) -> bool:
    with platform.client() as client:
        flows = client.get("/v1/replication").json()["flows"]
    return any(f["flow"] == "edge->cloud" and f["lagging_since"] for f in flows)


def _every_record_reached_the_cloud(
    clients: KafkaClients, topics: list[str], cars: list[VehicleAgent]
) -> None:
    """Every car's seq 1..last in the cloud (telemetry, events and answers share it), in order
    per VIN and topic, duplicates counted and collapsed by ``fl.msg_id``."""

    gaps: dict[str, tuple[int, int, list[int]]] = {}

    def complete() -> bool:
        seen: dict[str, list[int]] = {}
        ids: set[str] = set()
        duplicates = 0
        for topic in topics:
            per_topic: dict[str, list[int]] = {}
            for record in sorted(read_topic(clients, topic), key=lambda r: r.offset()):
                record_id = message_id(record.headers()) or ""
                if record_id in ids:
                    duplicates += 1
                    continue
                ids.add(record_id)
                seq = int(header_value(record.headers(), SEQ_PROPERTY) or b"0")
                # the MQTT topic names the car (answers are keyed by command id)
                mqtt_topic = (header_value(record.headers(), h.MQTT_TOPIC) or b"").decode()
                if mqtt_topic.count("/") >= 2:  # other reporters' records name no car of ours
                    per_topic.setdefault(mqtt_topic.split("/")[1], []).append(seq)
            for vin, seqs in per_topic.items():
                assert seqs == sorted(seqs), f"{vin} out of order in {topic}"
                seen.setdefault(vin, []).extend(seqs)
        gaps.clear()
        for car in cars:
            got = seen.get(car.vin, [])
            missing = sorted(set(range(1, car.last_seq + 1)) - set(got))
            if missing or len(got) != car.last_seq:
                gaps[car.vin] = (car.last_seq, len(got), missing[:10])
        if gaps:
            return False
        print(f"{len(ids)} records of {len(cars)} cars in the cloud, in order; {duplicates} dup")
        return True

    # vin: (last seq the car used, records of it in the cloud, first seqs missing)
    assert wait_until(complete, 30, interval=1.0), f"incomplete in the cloud: {gaps}"
