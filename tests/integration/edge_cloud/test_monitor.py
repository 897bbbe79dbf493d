"""The replication monitor on real clusters: a cut longer than the edge's retention loses
records MM2 skips without a word; the monitor reports exactly those, and the lag alarm raises
during the cut and clears after it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import msgspec
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, OffsetSpec
from fastapi.testclient import TestClient

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.dedup import message_id
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.polling import wait_until
from fleetlink.api.app import create_app
from fleetlink.contracts.replication import ReplicationAlert, ReplicationAlertKind
from fleetlink.contracts.topics import KafkaTopic, Site
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings, dump_toml
from fleetlink.stack import LocalStack
from fleetlink.stack.link import LinkMode
from fleetlink.stack.ports import free_port_block
from tests.support.apps import send_presence
from tests.support.edge_cloud import run_topics, send
from tests.support.stack import REPO, user_token

RETENTION_MS = 1500
LAG_ALERT_S = 2.5  # beats cross each second: a healthy link stays well under


@contextmanager
def monitor_process(settings: Settings, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``fleetlink mirror monitor`` at the cloud, as its own process."""
    config = workdir / "monitor.toml"
    config.write_text(dump_toml(settings))
    log = (workdir / "monitor.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "fleetlink", "--config", str(config), "mirror", "monitor"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def gauge(port: int, name: str) -> float | None:
    """A gauge of the monitor's /metrics, None before it has one."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(f"fleetlink_replication_{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def offsets(stack: LocalStack, topic: str, spec: OffsetSpec) -> list[int]:
    """Each partition's first or end offset at the edge."""
    admin = KafkaClients.at(stack.bootstrap_servers(Site.EDGE)).admin()
    request = {TopicPartition(topic, p): spec for p in range(3)}
    answers = admin.list_offsets(request, request_timeout=5)
    return [answers[tp].result(5).offset for tp in sorted(answers, key=lambda t: t.partition)]


def short_retention(stack: LocalStack, topic: str) -> None:
    """The edge keeps ``topic`` for RETENTION_MS only, in segments rolled every 300 ms."""
    admin = KafkaClients.at(stack.bootstrap_servers(Site.EDGE)).admin()
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(
                "retention.ms", str(RETENTION_MS), incremental_operation=AlterConfigOpType.SET
            ),
            ConfigEntry("segment.ms", "300", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(10)


def test_a_cut_longer_than_the_edge_retention_is_reported_with_what_was_lost(
    edge_cloud_config: Settings, edge_cloud_stack: LocalStack, tmp_path: Path
) -> None:
    stack = edge_cloud_stack
    topics = run_topics(stack)
    telemetry = topics[KafkaTopic.TELEMETRY]
    metrics_port = free_port_block(1)
    settings = edge_cloud_config.model_copy(
        update={
            "site": Site.CLOUD,
            "topics": edge_cloud_config.topics.model_copy(update={"prefix": topics.prefix}),
            "replication": edge_cloud_config.replication.model_copy(
                update={"check_s": 0.3, "lag_alert_s": LAG_ALERT_S, "metrics_port": metrics_port}
            ),
        }
    )
    cloud = KafkaClients.at(stack.bootstrap_servers(Site.CLOUD))
    alerts_topic = topics[KafkaTopic.REPLICATION_ALERTS]
    producer = KafkaClients.at(stack.bootstrap_servers(Site.EDGE)).producer()
    sent: list[str] = []
    stop, driving = threading.Event(), threading.Event()
    driving.set()

    sending = threading.Lock()  # held while a batch is on its way

    def cars() -> None:
        while not stop.is_set():
            if driving.wait(0.05):
                with sending:
                    if driving.is_set():
                        sent.extend(send(stack, Site.EDGE, telemetry, 20, producer=producer))
                time.sleep(0.05)

    def quiet() -> None:
        """No more records, and the batch that was on its way has landed: MM2 copies it and
        stores where it stands before the test goes on. (Without the wait, a batch landing
        after the gauge said 0 was copied but not yet stored at the cut: counted lost too.)"""
        driving.clear()
        with sending:
            pass

    sender = threading.Thread(target=cars, daemon=True)
    with monitor_process(settings, tmp_path) as monitor:
        sender.start()
        try:
            assert wait_until(lambda: len(read_topic(cloud, telemetry)) >= 300, 30, interval=0.2)
            # a pause, until MM2 has copied all and stored where it stands (the monitor's gauge
            # says so): the monitor counts from what MM2 stored (see RetentionGuard)
            quiet()
            assert wait_until(lambda: gauge(metrics_port, "pending_records") == 0, 20, 0.3)
            # retention far shorter than the cut from now on (before, it would also take
            # records MM2 copied moments ago but had not stored yet: see RetentionGuard)
            short_retention(stack, telemetry)
            # reset, not blackhole: after a long blackhole MM2 was seen to resume only after 20
            # to 60 s in CI (see the closing note); this test is about what retention took
            stack.link.cut(LinkMode.RESET)
            cut_at = time.monotonic()
            time.sleep(0.5)  # the proxy has applied the cut (it looks every 0.1 s)
            driving.set()  # a burst during the cut, then quiet until retention took all of it
            time.sleep(1.0)
            driving.clear()

            def retention_took_everything() -> bool:
                firsts = offsets(stack, telemetry, OffsetSpec.earliest())
                return firsts == offsets(stack, telemetry, OffsetSpec.latest())

            # Kafka checks retention every second, but only from 30 s after it started
            assert wait_until(retention_took_everything, 40, 0.5)
            time.sleep(max(0.0, LAG_ALERT_S + 2 - (time.monotonic() - cut_at)))
            stack.link.heal()
            time.sleep(3)
        finally:
            stop.set()
            sender.join(30)

        def alerts() -> list[ReplicationAlert]:
            return [
                msgspec.json.decode(r.value() or b"", type=ReplicationAlert)
                for r in read_topic(cloud, alerts_topic)
            ]

        def reported() -> int:
            return sum(a.count or 0 for a in alerts() if a.kind is ReplicationAlertKind.EXPIRED)

        def missing() -> int:
            arrived = {message_id(r.headers()) for r in read_topic(cloud, telemetry)}
            return len(set(sent) - arrived)

        # every record sent either crossed or is reported lost, exactly (MM2 may take a while
        # to resume: a request lost in the cut can wait out its 30 s timeout)
        assert wait_until(lambda: 0 < reported() == missing(), 45, interval=1.0), (
            reported(),
            missing(),
        )
        assert monitor.poll() is None  # the monitor lived through the cut
        lag = gauge(metrics_port, "lag_seconds")
        assert lag is not None, "the monitor shows its lag"
        assert lag < 3  # 0.0, a link fully caught up, passes (it once failed as "or 99")
    lost_records = missing()
    assert reported() == lost_records  # exactly what was lost (no transaction markers here)
    lost = [a for a in alerts() if a.kind is ReplicationAlertKind.EXPIRED]
    assert {a.topic for a in lost} == {telemetry}
    assert all(a.flow == "edge->cloud" and a.state == "lost" for a in lost)
    lag = [a.state for a in alerts() if a.kind is ReplicationAlertKind.LAG]
    assert lag[:2] == ["raised", "cleared"]
    print(f"sent {len(sent)}, lost to retention {lost_records}, reported {reported()}; lag {lag}")


def test_the_api_says_since_when_the_edge_is_unreachable_and_what_waits_for_it(
    edge_cloud_config: Settings, edge_cloud_stack: LocalStack, tmp_path: Path
) -> None:
    """The API runs in the cloud: while the link is cut it says since when the edge is
    unreachable, a new command is taken but marked awaiting the edge, and a cancel says at
    once that its outcome is not known yet (the tracker that settles it is at the edge)."""
    stack = edge_cloud_stack
    topics = run_topics(stack)
    settings = edge_cloud_config.model_copy(
        update={
            "site": Site.CLOUD,
            "topics": edge_cloud_config.topics.model_copy(update={"prefix": topics.prefix}),
            "replication": edge_cloud_config.replication.model_copy(
                update={"check_s": 0.3, "lag_alert_s": LAG_ALERT_S, "metrics_port": 0}
            ),
        }
    )
    admin = user_token(settings, "ada", UserRole.FLEET_ADMIN)
    vin = "ECAPA000000000001"

    def flow() -> dict[str, object]:
        flows = api.get("/v1/replication").json()["flows"]
        return next((f for f in flows if f["flow"] == "edge->cloud"), {})

    with (
        monitor_process(settings, tmp_path),
        TestClient(create_app(settings), headers=admin) as api,
    ):
        assert wait_until(lambda: api.get("/readyz").status_code == 200, 30, 0.3)
        # the car came online at the edge; the cloud's API learns it over the link
        edge = KafkaClients.at(stack.bootstrap_servers(Site.EDGE)).producer()
        send_presence(edge, topics[KafkaTopic.PRESENCE], vin, int(time.time() * 1000), online=True)
        assert edge.flush(10) == 0
        assert wait_until(lambda: api.get(f"/v1/vehicles/{vin}").status_code == 200, 20, 0.3)
        assert api.get("/v1/replication").status_code == 200
        stack.link.cut(LinkMode.BLACKHOLE)
        try:
            assert wait_until(lambda: flow().get("lagging_since") is not None, 15, 0.3)
            since = flow()["lagging_since"]
            command = api.post(f"/v1/vehicles/{vin}/commands", json={"name": "honk"})
            assert command.status_code == 202, command.text
            assert command.json()["awaiting_edge"] is True
            assert command.json()["edge_unreachable_since"] == since
            started = time.monotonic()
            cancel = api.post(f"/v1/commands/{command.json()['command_id']}/cancel")
            assert cancel.status_code == 202
            assert cancel.json()["cancel"] == "requested"
            assert time.monotonic() - started < 2  # no waiting for a tracker cut off
        finally:
            stack.link.heal()
        assert wait_until(lambda: flow().get("lagging_since") is None, 20, 0.3)
        again = api.get(f"/v1/commands/{command.json()['command_id']}").json()
        assert "awaiting_edge" not in again
        viewer = user_token(settings, "vic", UserRole.OWNER, vins=[vin])
        assert api.get("/v1/replication", headers=viewer).status_code == 403
