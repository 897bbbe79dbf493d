"""OTA updates in the car: the signed command path, the download over HTTP (resumed, verified),
the install into the other slot when parked, fallback and recovery after a power loss."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetlink.contracts.campaigns import SoftwareCancelParams, SoftwareUpdateParams, sha256_of
from fleetlink.contracts.models import CommandName, EventKind, ResponseStatus
from fleetlink.contracts.topics import MqttTopic
from fleetlink.sim.fleet import FleetSimulation
from fleetlink.vehicle.agent import VehicleAgent
from fleetlink.vehicle.commands import CommandExecutor
from fleetlink.vehicle.flash import DOWNLOAD_FILE
from fleetlink.vehicle.ota import OtaConfig
from fleetlink.vehicle.ota_rules import OtaFaults
from fleetlink.vehicle.state import VehicleState
from tests.unit.vehicle.ota_support import (
    DAY_MS,
    IMAGE,
    NOW,
    TOKEN,
    TRUST,
    VIN,
    Car,
    ImageServer,
    command,
    until,
    update,
)

UPDATE = CommandName.SOFTWARE_UPDATE
CANCEL = CommandName.SOFTWARE_CANCEL


def order(
    car: Car, params: SoftwareUpdateParams, command_id: str = "c1"
) -> list[tuple[str, str | None]]:
    answers = car.executor.handle(command(UPDATE, params, command_id), NOW)
    return [(answer.status.value, answer.reason) for answer in answers]


def cancel(car: Car, campaign_id: str, command_id: str = "x1") -> list[tuple[str, str | None]]:
    answers = car.executor.handle(
        command(CANCEL, SoftwareCancelParams(campaign_id=campaign_id), command_id), NOW
    )
    return [(answer.status.value, answer.reason) for answer in answers]


# the order ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (update("2026.39"), "rollback: 2026.39 is older than the installed 2026.40"),
        (update(target="fl-van"), "wrong-target: the image is for fl-van, this car is a fl-sedan"),
        (update(expires_at=NOW), "order-expired"),
        (update(vin="WVWZZZ1JZXW000002"), "order-other-vehicle"),
        (update(image_key=Ed25519PrivateKey.generate()), "image-unknown-key"),
    ],
)
def test_an_update_the_car_must_not_take_is_rejected_and_reported(
    params: SoftwareUpdateParams, reason: str
) -> None:
    car = Car()
    assert order(car, params) == [("rejected", reason)]
    assert car.events == [
        {
            "step": "rejected",
            "installed": "2026.40",
            "campaign_id": "spring-release",
            "version": params.image.version,
            "reason": reason,
            "slot": "a",
        }
    ]
    assert car.ota.flash.record.job is None
    assert car.executor.refused == {reason.split(":")[0]: 1}


def test_metadata_changed_after_signing_is_rejected() -> None:
    params = update()
    tampered = msgspec.structs.replace(
        params, image=msgspec.structs.replace(params.image, sha256="0" * 64)
    )
    assert order(Car(), tampered) == [("rejected", "image-bad-signature")]


def test_the_version_the_car_runs_already_succeeds_at_once() -> None:
    car = Car(firmware="2026.41")
    assert order(car, update("2026.41")) == [("accepted", None), ("succeeded", None)]
    assert car.steps() == ["succeeded"]
    assert car.last()["installed"] == "2026.41"
    assert car.ota.flash.record.job is None


def test_a_newer_order_replaces_a_job_not_yet_installing() -> None:
    car = Car()
    assert order(car, update(), "c1") == [("accepted", None), ("succeeded", None)]
    assert order(car, update(), "c2")[-1] == ("succeeded", None)  # a retry: the same job
    other = update("2026.42", data=IMAGE[::-1], campaign_id="summer-release")
    assert order(car, other, "c3")[-1] == ("succeeded", None)
    assert [(e["step"], e["campaign_id"]) for e in car.events] == [("cancelled", "spring-release")]
    job = car.ota.flash.record.job
    assert job is not None
    assert job.params.campaign_id == "summer-release"


def test_an_order_for_another_image_while_installing_fails() -> None:
    car = Car()
    order(car, update())
    car.ota.flash.record.trying = "b"
    other = update("2026.42", data=IMAGE[::-1], campaign_id="summer-release")
    assert order(car, other, "c2")[-1] == ("failed", "already-installing: spring-release")
    assert car.last()["step"] == "failed"
    job = car.ota.flash.record.job
    assert job is not None
    assert job.params.campaign_id == "spring-release"


def test_cancel_drops_the_job_unless_it_is_installing(tmp_path: Path) -> None:
    car = Car(flash_dir=tmp_path)
    order(car, update())
    car.ota.flash.append(IMAGE[:100])
    assert cancel(car, "other-campaign", "x1") == [("accepted", None), ("succeeded", None)]
    assert car.events == []
    assert cancel(car, "spring-release", "x2") == [("accepted", None), ("succeeded", None)]
    assert car.steps() == ["cancelled"]
    assert car.ota.flash.record.job is None
    assert not (tmp_path / DOWNLOAD_FILE).exists()
    order(car, update(), "c2")
    car.ota.flash.record.trying = "b"
    assert cancel(car, "spring-release", "x3") == [
        ("accepted", None),
        ("failed", "already-installing"),
    ]
    assert car.ota.flash.record.job is not None


def test_a_car_without_ota_keys_rejects_updates_as_unsupported() -> None:
    state = VehicleState(vin=VIN, latitude=52.52, longitude=13.40)
    (answer,) = CommandExecutor(state, verifier=None).handle(command(UPDATE, update()), NOW)
    assert answer.status is ResponseStatus.REJECTED
    assert answer.reason == "unsupported: this car does not run software.update"


# the download and the install ---------------------------------------------------------------


async def _run(car: Car, until_steps: int, *, before: list[str] | None = None) -> None:
    """Run the car's updater until it sent ``until_steps`` final reports."""
    stop = asyncio.Event()
    task = asyncio.create_task(car.ota.run(stop))
    finals = {"succeeded", "failed", "rejected", "cancelled"}
    try:
        await until(lambda: sum(step in finals for step in car.steps()) >= until_steps)
    finally:
        stop.set()
        await task


def test_a_cut_download_resumes_from_the_byte_it_stopped_at_then_installs() -> None:
    server = ImageServer(cuts=[4096])

    async def scenario() -> Car:
        async with server.client() as http:
            car = Car(http=http)
            assert order(car, update())[-1] == ("succeeded", None)
            await _run(car, 1)
            return car

    car = asyncio.run(scenario())
    assert server.ranges == [None, "bytes=4096-"]  # never from the start again
    assert server.tokens == [f"Bearer {TOKEN}"] * 2
    assert server.if_ranges == [None, f'"{sha256_of(IMAGE)}"']  # the same bytes, or all again
    assert [(e["step"], e.get("progress_pct")) for e in car.events] == [
        ("downloading", 0),
        ("downloading", 25),
        ("downloading", 50),
        ("downloading", 75),
        ("downloaded", None),
        ("installing", None),
        ("succeeded", None),
    ]
    assert car.last() == {
        "step": "succeeded",
        "installed": "2026.41",
        "campaign_id": "spring-release",
        "version": "2026.41",
        "slot": "b",
    }
    assert car.state.firmware == "2026.41"
    assert car.births == 1  # the retained birth tells the platform the new version
    assert car.ota.flash.record.slots == {"a": "2026.40", "b": "2026.41"}


def test_a_restart_resumes_the_partial_download_kept_in_flash(tmp_path: Path) -> None:
    server = ImageServer()
    first = Car(flash_dir=tmp_path)
    order(first, update())
    first.ota.flash.append(IMAGE[:6000])  # then the power went
    first.ota.flash.save()

    async def scenario() -> Car:
        async with server.client() as http:
            car = Car(flash_dir=tmp_path, http=http)
            await _run(car, 1)
            return car

    car = asyncio.run(scenario())
    assert server.ranges == ["bytes=6000-"]
    assert car.steps()[0] == "downloading"
    assert car.events[0]["progress_pct"] == 50
    assert car.steps()[-1] == "succeeded"
    assert (tmp_path / "slot-b.bin").read_bytes() == IMAGE
    assert Car(flash_dir=tmp_path).state.firmware == "2026.41"  # and after the next restart


@pytest.mark.parametrize(
    ("served", "reason"),
    [
        (IMAGE[:-1] + b"\x00", "hash-mismatch"),
        (IMAGE + b"\x00", "length-mismatch"),
    ],
)
def test_bytes_other_than_the_signed_image_are_dropped_and_never_installed(
    tmp_path: Path, served: bytes, reason: str
) -> None:
    server = ImageServer(served)

    async def scenario() -> Car:
        async with server.client() as http:
            car = Car(flash_dir=tmp_path, http=http)
            order(car, update())
            await _run(car, 1)
            return car

    car = asyncio.run(scenario())
    assert car.last()["step"] == "rejected"
    assert car.last()["reason"].startswith(reason)
    assert "installing" not in car.steps()
    assert car.state.firmware == "2026.40"
    assert car.ota.flash.record.slots == {"a": "2026.40"}
    assert car.ota.flash.record.job is None
    assert not (tmp_path / DOWNLOAD_FILE).exists()


def test_a_short_body_is_rejected_for_its_length_after_resuming() -> None:
    server = ImageServer(IMAGE[:-10])

    async def scenario() -> Car:
        async with server.client() as http:
            car = Car(http=http)
            order(car, update())
            await _run(car, 1)
            return car

    car = asyncio.run(scenario())
    assert car.last()["step"] == "rejected"
    assert car.last()["reason"].startswith("length-mismatch")


def test_server_errors_are_retried_and_a_refusal_fails_the_update() -> None:
    async def scenario(server: ImageServer) -> Car:
        async with server.client() as http:
            car = Car(http=http)
            order(car, update())
            await _run(car, 1)
            return car

    flaky = ImageServer(statuses=[503, 502])
    assert asyncio.run(scenario(flaky)).steps()[-1] == "succeeded"
    assert len(flaky.ranges) == 3
    forbidden = ImageServer(statuses=[403])
    car = asyncio.run(scenario(forbidden))
    assert (car.last()["step"], car.last()["reason"]) == ("failed", "http-403")
    assert len(forbidden.ranges) == 1


def test_a_server_down_until_the_order_expires_fails_the_update() -> None:
    server = ImageServer(statuses=[503] * 1000)

    async def scenario() -> Car:
        async with server.client() as http:
            car = Car(http=http)
            order(car, update(expires_at=NOW + 1000))
            stop = asyncio.Event()
            task = asyncio.create_task(car.ota.run(stop))
            await until(lambda: len(server.ranges) >= 3)
            car.now = NOW + 1000
            await until(lambda: car.steps()[-1] == "failed")
            stop.set()
            await task
            return car

    car = asyncio.run(scenario())
    assert car.last()["reason"] == "order-expired"
    assert car.state.firmware == "2026.40"


def test_the_install_waits_until_the_car_is_parked() -> None:
    server = ImageServer()

    async def scenario() -> Car:
        async with server.client() as http:
            car = Car(http=http, park_wait_s=0.1)
            car.state.speed_kmh = 40.0
            order(car, update())
            stop = asyncio.Event()
            task = asyncio.create_task(car.ota.run(stop))
            await until(lambda: "downloaded" in car.steps())
            await asyncio.sleep(0.3)
            assert "installing" not in car.steps()  # driving: it waits
            car.state.speed_kmh = 0.0
            await until(lambda: car.steps()[-1] == "succeeded")
            stop.set()
            await task
            return car

    assert asyncio.run(scenario()).state.firmware == "2026.41"


def test_a_failing_boot_falls_back_to_the_old_slot() -> None:
    server = ImageServer()

    async def scenario() -> Car:
        async with server.client() as http:
            car = Car(http=http, faults=OtaFaults(fail_group=2, fail_rate=1.0))
            order(car, update(group=2))
            await _run(car, 1)
            return car

    car = asyncio.run(scenario())
    assert car.last() == {
        "step": "failed",
        "installed": "2026.40",
        "campaign_id": "spring-release",
        "version": "2026.41",
        "reason": "boot-failed: fell back to slot a",
        "slot": "a",
    }
    assert car.state.firmware == "2026.40"
    assert car.births == 0


def test_a_power_loss_mid_install_boots_the_old_slot_at_the_next_start(tmp_path: Path) -> None:
    server = ImageServer()

    async def lose_power_while_installing() -> None:
        async with server.client() as http:
            car = Car(flash_dir=tmp_path, http=http, install_s=60.0)
            order(car, update())
            stop = asyncio.Event()
            task = asyncio.create_task(car.ota.run(stop))
            await until(lambda: "installing" in car.steps())
            stop.set()  # the task ends mid-install: what kill -9 leaves in flash
            await task

    asyncio.run(lose_power_while_installing())
    car = Car(flash_dir=tmp_path)
    assert car.state.firmware == "2026.40"

    async def start_again() -> None:
        await _run(car, 1)

    asyncio.run(start_again())
    assert car.events == [
        {
            "step": "failed",
            "installed": "2026.40",
            "campaign_id": "spring-release",
            "version": "2026.41",
            "reason": "power-lost: fell back to slot a",
            "slot": "a",
        }
    ]
    assert Car(flash_dir=tmp_path).ota.flash.record.trying is None


def test_a_cancel_stops_a_running_download(tmp_path: Path) -> None:
    server = ImageServer(statuses=[503] * 1000)

    async def scenario() -> Car:
        async with server.client() as http:
            car = Car(flash_dir=tmp_path, http=http)
            order(car, update())
            stop = asyncio.Event()
            task = asyncio.create_task(car.ota.run(stop))
            await until(lambda: len(server.ranges) >= 2)
            cancel(car, "spring-release")
            await until(lambda: car.steps()[-1] == "cancelled")
            requests = len(server.ranges)
            await asyncio.sleep(0.1)
            assert len(server.ranges) == requests  # nothing more is fetched
            stop.set()
            await task
            return car

    car = asyncio.run(scenario())
    assert car.ota.flash.record.job is None


# the agent ----------------------------------------------------------------------------------


def test_the_agent_reports_software_state_and_announces_new_firmware() -> None:
    state = VehicleState(vin=VIN, latitude=52.52, longitude=13.40)
    agent = VehicleAgent(state, host="127.0.0.1", port=9, verifier=None, ota=OtaConfig(trust=TRUST))
    assert agent.ota is not None
    agent.executor.handle(command(UPDATE, update("2026.39")), NOW)
    event = agent.outbox.peek()
    assert event is not None
    assert event.topic == MqttTopic.event(VIN, EventKind.SOFTWARE_STATE)
    assert msgspec.json.decode(event.payload)["data"]["step"] == "rejected"
    agent.outbox.acknowledged(event, 0.0)
    state.firmware = "2026.41"
    agent._rebirth()
    birth = agent.outbox.peek()
    assert birth is not None
    assert (birth.topic, birth.retain) == (MqttTopic.presence(VIN), True)
    assert msgspec.json.decode(birth.payload)["firmware"] == "2026.41"
    assert agent._reboot  # and it reconnects, so that its last will names the new version


def test_the_report_of_an_order_follows_its_answer() -> None:
    async def scenario() -> None:
        car = Car()
        assert order(car, update("2026.39"))[-1][0] == "rejected"
        assert car.events == []  # the agent sends the answer first ...
        await asyncio.sleep(0)
        assert car.steps() == ["rejected"]  # ... then the event

    asyncio.run(scenario())


def test_an_install_that_breaks_fails_and_leaves_the_old_slot_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = ImageServer()

    def broken_slot(slot: str) -> None:
        raise OSError(28, "No space left on device")

    async def scenario() -> Car:
        async with server.client() as http:
            car = Car(http=http)
            monkeypatch.setattr(car.ota.flash, "write_slot", broken_slot)
            order(car, update())
            await _run(car, 1)
            return car

    car = asyncio.run(scenario())
    assert car.last()["step"] == "failed"
    assert car.last()["reason"].startswith("error: OSError")
    record = car.ota.flash.record
    assert (record.active, record.trying, record.job, record.slots) == (
        "a",
        None,
        None,
        {"a": "2026.40"},
    )
    assert order(car, update(), "c2")[-1] == ("succeeded", None)  # not stuck "installing"


def test_the_agent_runs_updates_beside_its_link_even_while_offline() -> None:
    server = ImageServer()
    state = VehicleState(vin=VIN, latitude=52.52, longitude=13.40)

    async def scenario() -> VehicleAgent:
        async with server.client() as http:
            config = OtaConfig(trust=TRUST, http=http, park_wait_s=0.0, install_s=0.0)
            agent = VehicleAgent(
                state, host="127.0.0.1", port=9, verifier=None, reconnect_max_s=0.05, ota=config
            )
            params = update(expires_at=agent.now_ms() + DAY_MS)
            assert agent.executor.handle(command(UPDATE, params), NOW)[-1].reason is None
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))  # no broker there: it keeps trying
            await until(lambda: state.firmware == "2026.41")
            stop.set()
            await running
            return agent

    agent = asyncio.run(scenario())
    sent = []
    while (pending := agent.outbox.peek()) is not None:
        sent.append(pending)
        agent.outbox.acknowledged(pending, 0.0)
    steps = [
        msgspec.json.decode(p.payload)["data"]["step"]
        for p in sent
        if p.topic == MqttTopic.event(VIN, EventKind.SOFTWARE_STATE)
    ]
    assert steps[-3:] == ["downloaded", "installing", "succeeded"]
    birth = sent[-1]
    assert (birth.topic, birth.retain) == (MqttTopic.presence(VIN), True)
    assert msgspec.json.decode(birth.payload)["firmware"] == "2026.41"


def test_a_simulated_fleet_gives_each_car_its_own_flash_and_one_http_client(
    tmp_path: Path,
) -> None:
    fleet = FleetSimulation(
        host="127.0.0.1",
        port=9,
        vehicles=2,
        interval_s=1.0,
        seed=1,
        mode="kinematic",
        verifier=None,
        ota=OtaConfig(trust=TRUST, flash_dir=tmp_path, faults=OtaFaults(fail_rate=0.5)),
    )
    updaters = [agent.ota for agent in fleet.agents]
    assert all(updater is not None for updater in updaters)
    dirs = [u.flash.directory for u in updaters if u is not None]
    assert dirs == [tmp_path / agent.vin for agent in fleet.agents]
    clients = {id(u.config.http) for u in updaters if u is not None}
    assert len(clients) == 1
    assert None not in {u.config.http for u in updaters if u is not None}
    assert all(u.config.faults.fail_rate == 0.5 for u in updaters if u is not None)
