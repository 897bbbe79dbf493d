import math

import pytest

from fleetlink.contracts import vss
from fleetlink.contracts.models import Command, CommandName, ResponseStatus
from fleetlink.sim.kinematic import KinematicFleet, to_lat_lon
from fleetlink.vehicle.commands import CommandExecutor, feature_report
from fleetlink.vehicle.geo import subscription_changes, warning_cells
from fleetlink.vehicle.state import VehicleState

NOW = 1_764_000_000_000


def state() -> VehicleState:
    return VehicleState(vin="WVWZZZ1JZXW000001", latitude=52.52, longitude=13.40)


def command(
    name: CommandName, command_id: str = "c1", ttl_ms: int = 60_000, **params: object
) -> Command:
    return Command(
        command_id=command_id,
        name=name,
        issued_at=NOW,
        expires_at=NOW + ttl_ms,
        params=dict(params),
    )


def test_trunk_open_changes_state_and_telemetry() -> None:
    vehicle = state()
    executor = CommandExecutor(vehicle, verifier=None)
    answers = executor.handle(command(CommandName.TRUNK_OPEN), NOW)
    assert [a.status for a in answers] == [ResponseStatus.ACCEPTED, ResponseStatus.SUCCEEDED]
    assert vehicle.signals()[vss.TRUNK_REAR_IS_OPEN] is True
    assert executor.executed == 1


def test_a_replayed_command_is_answered_from_memory_not_executed_again() -> None:
    vehicle = state()
    executor = CommandExecutor(vehicle, verifier=None)
    first = executor.handle(command(CommandName.TRUNK_OPEN, "c7"), NOW)
    executor.handle(command(CommandName.TRUNK_CLOSE, "c8"), NOW + 1)
    replay = executor.handle(command(CommandName.TRUNK_OPEN, "c7"), NOW + 2)
    assert replay == [first[-1]]
    assert vehicle.trunk_open is False  # the replay did not open it again
    assert executor.executed == 2
    assert executor.replays == 1


def test_expired_commands_are_rejected_and_never_executed() -> None:
    vehicle = state()
    executor = CommandExecutor(vehicle, verifier=None)
    answers = executor.handle(command(CommandName.UNLOCK, ttl_ms=1000), NOW + 1000)
    assert [(a.status, a.reason) for a in answers] == [(ResponseStatus.REJECTED, "expired")]
    assert vehicle.doors_locked is True
    assert executor.executed == 0
    # and a late redelivery of the same id is still not executed
    assert executor.handle(command(CommandName.UNLOCK, ttl_ms=10**9), NOW)[0].reason == "expired"


@pytest.mark.parametrize(
    ("cmd", "status", "reason"),
    [
        (command(CommandName.CLIMATE, target_c=40), ResponseStatus.REJECTED, "bad-params"),
        (command(CommandName.FEATURE_ACTIVATE), ResponseStatus.REJECTED, "bad-params"),
        (command(CommandName.CONFIG_CHANGE), ResponseStatus.REJECTED, "bad-params"),
    ],
)
def test_bad_parameters_are_rejected(cmd: Command, status: ResponseStatus, reason: str) -> None:
    (answer,) = CommandExecutor(state(), verifier=None).handle(cmd, NOW)
    assert answer.status is status
    assert answer.reason is not None
    assert answer.reason.startswith(reason)


def test_failures_are_reported_with_a_reason() -> None:
    vehicle = state()
    vehicle.speed_kmh = 30
    answers = CommandExecutor(vehicle, verifier=None).handle(command(CommandName.TRUNK_OPEN), NOW)
    assert [(a.status, a.reason) for a in answers] == [
        (ResponseStatus.ACCEPTED, None),
        (ResponseStatus.FAILED, "vehicle-moving"),
    ]
    assert vehicle.trunk_open is False


def test_settings_commands_change_state() -> None:
    vehicle = state()
    executor = CommandExecutor(vehicle, verifier=None)
    executor.handle(command(CommandName.CLIMATE, "a", target_c=23, on=True), NOW)
    executor.handle(command(CommandName.FEATURE_ACTIVATE, "b", feature="heated-seats"), NOW)
    executor.handle(command(CommandName.CHARGING_START, "c"), NOW)
    assert (vehicle.climate_on, vehicle.climate_target_c) == (True, 23.0)
    assert vehicle.features == {"heated-seats"}
    assert vehicle.charging is True


def test_a_car_refuses_a_feature_it_cannot_run_and_reports_what_it_turns_on() -> None:
    vehicle = state()
    vehicle.equipment = frozenset({"heated-seats"})
    executor = CommandExecutor(vehicle, verifier=None)
    boost = command(CommandName.FEATURE_ACTIVATE, "a", feature="performance-boost")
    (refusal,) = executor.handle(boost, NOW)
    assert refusal.status is ResponseStatus.REJECTED
    assert (refusal.reason or "").startswith("not-equipped")
    newer = command(
        CommandName.FEATURE_ACTIVATE, "b", feature="heated-seats", min_firmware="2027.1"
    )
    (refusal,) = executor.handle(newer, NOW)
    assert refusal.reason == "firmware-too-old: heated-seats needs 2027.1, the car runs 2026.40"
    assert executor.executed == 0
    assert vehicle.features == set()
    month = command(
        CommandName.FEATURE_ACTIVATE,
        "c",
        feature="heated-seats",
        min_firmware="2026.9",
        until=NOW + 5,
    )
    answers = executor.handle(month, NOW)
    assert answers[-1].status is ResponseStatus.SUCCEEDED
    report = feature_report(vehicle, month, answers[-1], NOW)
    assert report == {
        "feature": "heated-seats",
        "active": True,
        "command_id": "c",
        "until": NOW + 5,
    }
    assert not vehicle.feature_active("heated-seats", NOW + 5)  # the paid month is over
    off = command(CommandName.FEATURE_DEACTIVATE, "d", feature="heated-seats")
    answers = executor.handle(off, NOW + 1)
    assert feature_report(vehicle, off, answers[-1], NOW + 1) == {
        "feature": "heated-seats",
        "active": False,
        "command_id": "d",
    }
    assert feature_report(vehicle, boost, refusal, NOW) is None  # a refusal reports nothing


def test_kinematic_fleet_is_deterministic_for_a_seed() -> None:
    def run(seed: int) -> list[tuple[float, float]]:
        fleet = KinematicFleet(20, seed)
        for _ in range(120):
            fleet.step(1.0)
        return [fleet.position(i) for i in range(20)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_kinematic_cars_drive_plausibly_inside_the_city() -> None:
    fleet = KinematicFleet(50, 3)
    for _ in range(300):
        fleet.step(1.0)
        for car in fleet.cars:
            assert 0 <= car.speed_ms <= 16.7 + 1e-9  # at most 60 km/h
    lat, lon = fleet.position(0)
    assert 52.50 < lat < 52.54
    assert 13.37 < lon < 13.42
    assert sum(car.odometer_m for car in fleet.cars) > 50 * 1000  # they actually moved
    # one block east is about 120 m
    east_lat, east_lon = to_lat_lon(120, 0)
    assert math.isclose(
        (east_lon - 13.38) * 111_320 * math.cos(math.radians(52.51)), 120, rel_tol=0.01
    )
    assert east_lat == pytest.approx(52.51)


def test_warning_cells_follow_the_vehicle() -> None:
    here = warning_cells(52.5200, 13.4050)
    assert len(here) == 7  # its cell and the ring around it
    nearby = warning_cells(52.5201, 13.4051)
    assert here == nearby
    far = warning_cells(52.5400, 13.4500)  # about 3.6 km away
    enter, leave = subscription_changes(here, far)
    assert set(enter) == far - here
    assert set(leave) == here - far
    assert enter == sorted(enter)
    assert subscription_changes(here, here) == ([], [])
