"""OTA campaigns end to end: a fleet admin creates a campaign, a second one approves it, the
orchestrator rolls it out in groups through the real downlink to real cars, which download the
image's bytes from the API, check them against the signed metadata and install when parked.

One platform for the module (gateway, tracker, API, campaign orchestrator as real processes);
each test uses cars of its own (the campaign's segment names their VIN prefix).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.campaigns.images import ImageRepository
from fleetlink.contracts import headers
from fleetlink.contracts.campaigns import (
    DirectorOrder,
    ImageMetadata,
    SoftwareUpdateParams,
)
from fleetlink.contracts.codec import decode, encode
from fleetlink.contracts.models import Command, CommandName, Presence, PresenceStatus
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.images import DownloadClaim
from fleetlink.security.keys import command_signer, director_signer, image_signer, ota_trust
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from fleetlink.vehicle.ota import OtaConfig
from fleetlink.vehicle.ota_rules import OtaFaults
from tests.support.commands import Platform, command_platform
from tests.support.polling import eventually
from tests.support.stack import user_token

IMAGE = "fl-sedan-os"
OLD, NEW = "2026.40", "2026.48"
SECTIONS = {"campaigns": {"tick_s": 0.2, "progress_every_s": 0.2}}


@pytest.fixture(scope="module")
def ota(
    tmp_path_factory: pytest.TempPathFactory, local_stack: LocalStack, stack_config: Settings
) -> Iterator[Platform]:
    images = tmp_path_factory.mktemp("images")
    sections = {"campaigns": {**SECTIONS["campaigns"], "image_dir": str(images)}}
    with command_platform(
        tmp_path_factory.mktemp("campaigns"),
        stack_config,
        sections=sections,
        beside_api=[("campaigns", ["campaigns", "run"])],
    ) as running:
        publish(running.settings, NEW, os.urandom(300_000))
        yield running


def publish(settings: Settings, version: str, data: bytes) -> ImageMetadata:
    repository = ImageRepository(settings.image_dir())
    return repository.publish(
        data, name=IMAGE, version=version, target="fl-sedan", signer=image_signer(settings)
    )


def last_presence(platform: Platform, vin: str) -> Presence:
    topic = platform.settings.topic_map()[KafkaTopic.PRESENCE]
    records = read_topic(KafkaClients.of(platform.settings), topic)
    return [decode(Presence, r.value()) for r in records if r.key() == vin.encode()][-1]


def second_admin(platform: Platform) -> dict[str, str]:
    return user_token(platform.settings, "release-manager", UserRole.FLEET_ADMIN)


def cars(platform: Platform, prefix: str, count: int, **ota: Any) -> list[str]:
    """``count`` cars that take updates (install in half a second once parked), online."""
    platform.garage.ota = OtaConfig(
        trust=ota_trust(platform.settings), install_s=0.5, park_wait_s=0.2, retry_s=0.2, **ota
    )
    vins = [f"{prefix}{n:0{17 - len(prefix)}d}" for n in range(count)]
    for vin in vins:
        platform.start_car(vin)
    return vins


def create(platform: Platform, prefix: str, **spec: Any) -> str:
    body = {"name": f"{prefix} to {NEW}", "image": IMAGE, "version": NEW} | spec
    body["segment"] = {"vin_prefix": prefix}
    with platform.client() as client:
        reply = client.post("/v1/campaigns", json=body)
        assert reply.status_code == 202, reply.text
        campaign_id: str = reply.json()["campaign_id"]
        eventually(lambda: campaign(platform, campaign_id) is not None, 15, "campaign recorded")
        refused = client.post(f"/v1/campaigns/{campaign_id}/approve")  # the creator: four eyes
        assert refused.status_code == 409, refused.text
    act(platform, campaign_id, "approve", second_admin(platform))
    return campaign_id


def act(
    platform: Platform, campaign_id: str, action: str, auth: dict[str, str] | None = None
) -> None:
    with platform.client(auth) as client:
        reply = client.post(f"/v1/campaigns/{campaign_id}/{action}", json={})
        assert reply.status_code == 202, reply.text


def campaign(platform: Platform, campaign_id: str) -> dict[str, Any] | None:
    with platform.client() as client:
        reply = client.get(f"/v1/campaigns/{campaign_id}")
        if reply.status_code == 404:
            return None
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body


def vehicles(platform: Platform, campaign_id: str) -> dict[str, dict[str, Any]]:
    with platform.client() as client:
        reply = client.get(f"/v1/campaigns/{campaign_id}/vehicles", params={"limit": 1000})
        assert reply.status_code == 200, reply.text
        return {v["vin"]: v for v in reply.json()["vehicles"]}


def wait_campaign(
    platform: Platform, campaign_id: str, state: str, timeout: float = 30
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(campaign(platform, campaign_id) or {})
        return found.get("state") == state

    eventually(reached, timeout, f"campaign {campaign_id} {state} (is {found.get('state')})")
    return found


def test_errors_in_group_two_pause_the_campaign_before_group_three_and_resume_finishes_it(
    ota: Platform,
) -> None:
    prefix = "UPDPAUSE"
    vins = cars(ota, prefix, 20, faults=OtaFaults(fail_group=1, fail_rate=1.0))
    campaign_id = create(ota, prefix, groups=[5, 25, 50], rate_per_min=100_000)
    paused = wait_campaign(ota, campaign_id, "paused")
    assert paused["paused_for"] == "errors"
    assert re.fullmatch(
        r"group 2: (\d) of \1 cars that ended failed \(100% >= 10%\)", paused["reason"]
    )
    by_car = vehicles(ota, campaign_id)
    groups = {g: sorted(v for v, car in by_car.items() if car["group"] == g) for g in range(4)}
    assert [len(groups[g]) for g in range(4)] == [1, 5, 10, 4]
    assert {by_car[v]["state"] for v in groups[0]} == {"succeeded"}
    assert {by_car[v]["state"] for v in groups[1]} == {"failed"}
    assert all(by_car[v]["reason"].startswith("boot-failed") for v in groups[1])
    # group 3 got nothing: no order, and its cars still run the old version
    assert {by_car[v]["state"] for v in groups[2] + groups[3]} == {"queued"}
    time.sleep(1.0)  # a paused campaign stays paused
    assert {vehicles(ota, campaign_id)[v]["state"] for v in groups[2]} == {"queued"}
    assert all(ota.garage.agents[v].state.firmware == OLD for v in groups[1] + groups[2])

    act(ota, campaign_id, "resume")
    orchestrator = ota.service("campaigns")
    old_pid = orchestrator.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)  # mid-rollout: the restarted one carries on from Kafka
    eventually(lambda: orchestrator.running and orchestrator.pid != old_pid, 20, "restarted")
    done = wait_campaign(ota, campaign_id, "finished", timeout=40)
    by_car = vehicles(ota, campaign_id)
    updated = sorted(v for v, car in by_car.items() if car["state"] == "succeeded")
    assert updated == sorted(groups[0] + groups[2] + groups[3])
    assert all(ota.garage.agents[v].state.firmware == NEW for v in updated)
    assert all(ota.garage.agents[v].state.firmware == OLD for v in groups[1])  # fell back
    assert all(by_car[v]["reported"] == NEW for v in updated)
    assert {by_car[v]["attempts"] for v in vins} == {1}  # one order each, restart or not
    # the car reconnected after its update: the will the broker now holds names the new version
    ota.garage.agents[updated[0]].drop_connection(1.0)
    ota.wait_presence(updated[0], online=False)
    will = last_presence(ota, updated[0])
    assert (will.status, will.firmware) == (PresenceStatus.OFFLINE, NEW)
    summary = done["summary"]
    assert [g["counts"]["succeeded"] for g in summary["groups"]] == [1, 0, 10, 4]
    assert summary["failures"] == {"boot-failed": 5}
    assert summary["apply_time"]["cars"] == 15
    assert set(vins) == set(by_car)


def test_abort_stops_installs_that_have_not_begun(ota: Platform) -> None:
    prefix = "UPDABRT"
    vins = cars(ota, prefix, 4)
    for vin in vins:  # driving: they download, then wait to be parked
        ota.garage.agents[vin].state.speed_kmh = 30.0
    campaign_id = create(ota, prefix, groups=[100], rate_per_min=100_000)

    def downloaded() -> bool:
        return {car["state"] for car in vehicles(ota, campaign_id).values()} == {"downloaded"}

    eventually(downloaded, 30, "every car downloaded, waiting to park")
    act(ota, campaign_id, "abort")
    wait_campaign(ota, campaign_id, "aborted")

    def cancelled() -> bool:
        return {car["state"] for car in vehicles(ota, campaign_id).values()} == {"cancelled"}

    eventually(cancelled, 20, "every car dropped the update")
    for vin in vins:
        ota.garage.agents[vin].state.speed_kmh = 0.0
    time.sleep(1.5)  # parked: long enough to install, if a car still meant to
    assert {ota.garage.agents[v].state.firmware for v in vins} == {OLD}


def _forged_order(platform: Platform, vin: str, image: ImageMetadata, command_id: str) -> None:
    """What a compromised director could send: a correctly signed order and command."""
    settings = platform.settings
    director = director_signer(settings)
    expires = time.time_ns() // 1_000_000 + 60_000
    order = director.sign(
        DirectorOrder(vin, "forged", image.name, image.version, image.length, image.sha256, expires)
    )
    params = SoftwareUpdateParams(
        campaign_id="forged",
        image=image,
        order=order,
        url=f"{platform.api_url}/v1/images/{image.name}/{image.version}/bytes",
        token=director.download_token(DownloadClaim(vin, image.name, image.version, expires)),
    )
    command = Command(
        command_id=command_id,
        name=CommandName.SOFTWARE_UPDATE,
        issued_at=expires - 60_000,
        expires_at=expires,
        params=msgspec.to_builtins(params),
        vin=vin,
        actor="mallory",
    )
    producer = KafkaClients.of(settings).producer()
    producer.produce(
        settings.topic_map()[KafkaTopic.COMMANDS],
        key=vin,
        value=encode(command_signer(settings).sign_command(command)),
        headers=[(headers.RECORD_KIND, b"command")],
    )
    producer.flush(10)


def test_a_tampered_image_and_a_rollback_are_refused_by_the_car(ota: Platform) -> None:
    prefix = "UPDTAMPER"
    (tampered_car,) = cars(ota, prefix, 1)
    tampered = publish(ota.settings, "2026.50", os.urandom(50_000))
    path = ImageRepository(ota.settings.image_dir()).path(IMAGE, "2026.50")
    path.write_bytes(os.urandom(tampered.length))  # same length, other bytes, same metadata
    campaign_id = create(ota, prefix, version="2026.50", groups=[100])

    def refused() -> bool:
        car = vehicles(ota, campaign_id).get(tampered_car, {})
        return car.get("state") == "rejected"

    eventually(refused, 30, "the tampered image refused")
    assert vehicles(ota, campaign_id)[tampered_car]["reason"].startswith("hash-mismatch")
    assert ota.garage.agents[tampered_car].state.firmware == OLD

    (rolled_car,) = cars(ota, "UPDRLLBCK", 1)
    older = publish(ota.settings, "2026.30", os.urandom(10_000))
    _forged_order(ota, rolled_car, older, "forged-rollback")
    answer = ota.wait_state("forged-rollback", {"rejected"})
    assert answer["reason"].startswith("rollback"), answer
    bad = msgspec.structs.replace(older, sha256="0" * 64)  # metadata altered after signing
    _forged_order(ota, rolled_car, bad, "forged-metadata")
    answer = ota.wait_state("forged-metadata", {"rejected"})
    assert answer["reason"] == "image-bad-signature", answer
    assert ota.garage.agents[rolled_car].state.firmware == OLD


def test_a_car_that_loses_power_while_installing_falls_back_and_reports_failed(
    ota: Platform, tmp_path: Path
) -> None:
    prefix = "UPDPWR"
    argv = [
        sys.executable, "-m", "fleetlink", "--config", str(ota.config), "simulate", "--quiet",
        "--vehicles", "1", "--vin-prefix", prefix, "--mode", "kinematic", "--stationary",
        "--model", "fl-sedan", "--interval", "1", "--duration", "120",
        "--ota-install-s", "30", "--ota-park-wait-s", "0.2", "--ota-flash-dir", str(tmp_path),
    ]  # fmt: skip
    car = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ota.wait_presence(f"{prefix}{0:011d}", online=True)
        campaign_id = create(ota, prefix, groups=[100], rate_per_min=100_000)

        def installing() -> bool:
            return {c["state"] for c in vehicles(ota, campaign_id).values()} == {"installing"}

        eventually(installing, 40, "the car installing")
        os.kill(car.pid, signal.SIGKILL)  # the power goes
        car.wait(10)
        car = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def failed() -> bool:
            return {c["state"] for c in vehicles(ota, campaign_id).values()} == {"failed"}

        eventually(failed, 30, "the car back, on its old slot")
        (reported,) = vehicles(ota, campaign_id).values()
        assert reported["reason"].startswith("power-lost"), reported
        assert reported["reported"] != NEW
    finally:
        car.kill()
        car.wait(10)
