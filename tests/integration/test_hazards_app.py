"""The hazards app as a real process on the real Kafka: hand-built events at fixed times, exact
outputs on fleet.hazards. Each scenario happens at a spot of its own, kilometres from the others,
so one run of the app decides them all."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from fleetlink.contracts import headers as h
from fleetlink.contracts.geo import cell_of
from fleetlink.contracts.hazards import ClearReason, Hazard, HazardGroup, HazardState
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.apps import (
    AppPlatform,
    app_platform,
    now_ms,
    running_app,
    send_event,
    send_telemetry,
)
from tests.support.gateway import header
from tests.support.polling import eventually


def spot(index: int) -> tuple[float, float]:
    return (52.30 + 0.05 * index, 13.25)


def east(where: tuple[float, float], metres: float) -> tuple[float, float]:
    return (where[0], where[1] + metres / (111_320.0 * math.cos(math.radians(where[0]))))


def across_a_border(where: tuple[float, float], gap_m: float) -> tuple[tuple[float, float], ...]:
    start = cell_of(*where)
    for step in range(1, 3000):
        point = east(where, step)
        if cell_of(*point) != start:
            return east(point, -gap_m / 2 - 1), east(point, gap_m / 2)
    raise AssertionError("no border")


@pytest.fixture(scope="module")
def scenarios(
    tmp_path_factory: pytest.TempPathFactory, local_stack: LocalStack, stack_config: Settings
) -> Iterator[tuple[AppPlatform, dict[int, list[Hazard]]]]:
    """Every scenario's events written at once, the app run over them until each expected
    output came and the app has caught up; the outputs by spot."""
    tmp: Path = tmp_path_factory.mktemp("hazards")
    platform = app_platform(
        tmp,
        stack_config,
        grace_s=300.0,
        hazards={
            "clear_after_passes": 2,
            "pass_grace_s": 0.0,
            # hazard lights: short validity, so ticks expire it while the test waits
            "rules": {"stationary": {"validity_s": 2.0}},
        },
    )
    events = platform.topic(KafkaTopic.EVENTS)
    telemetry = platform.topic(KafkaTopic.TELEMETRY)
    base = now_ms() - 120_000
    base -= base % 60_000  # a minute boundary: scenario 3 straddles it
    with running_app(platform, "hazards") as app:
        producer = platform.producer()

        def report(
            vin: str, at_s: float, where: tuple[float, float], kind: str = "harsh-braking"
        ) -> None:
            send_event(
                producer, events, vin, kind, base + int(at_s * 1000), where, heading_deg=90.0
            )

        # 1: two cars brake hard (K is 3): nothing
        report("AAA00000000000001", 0, spot(1))
        report("AAA00000000000002", 4, spot(1))
        # 2: three cars: confirmed; a crash at the same spot is a hazard of its own
        for n in range(3):
            report(f"BBB0000000000000{n}", n * 5, spot(2))
        report("BBB00000000000009", 20, spot(2), "crash")
        # 3: 55 s, 62 s, 70 s after a minute boundary: one 60 s span
        for n, at in enumerate((-5, 2, 10)):
            report(f"CCC0000000000000{n}", 60 + at, spot(3))
        # 4: across a cell border, 100 m apart
        west_side, east_side = across_a_border(spot(4), 100)
        for n, where in enumerate((west_side, east_side, west_side)):
            report(f"DDD0000000000000{n}", n * 3, where)
        # 5: one car three times and a second car: still two cars
        for at in (0, 5, 10):
            report("EEE00000000000001", at, spot(5))
        report("EEE00000000000002", 12, spot(5))
        # 6: the hazard lights of a standing car, valid 2 s: confirmed, then expired by ticks
        report("FFF00000000000001", 0, spot(6), "hazard-lights")
        # 7: confirmed, then two cars drive past at speed without reporting it: cleared
        for n in range(3):
            report(f"GGG0000000000000{n}", n, spot(7))
        producer.flush(10)

        def by_spot() -> dict[int, list[Hazard]]:
            found: dict[int, list[Hazard]] = defaultdict(list)
            for hazard in platform.hazards():
                index = round((hazard.latitude - 52.30) / 0.05)
                found[index].append(hazard)
            return found

        def seen(spot_index: int, count: int) -> bool:
            assert app.poll() is None, "the app exited"
            return len(by_spot()[spot_index]) >= count

        eventually(lambda: seen(7, 1), 60, "the hazard at spot 7")
        for n, vin in enumerate(("HHH00000000000001", "HHH00000000000002")):
            send_telemetry(producer, telemetry, vin, base + 30_000 + n * 1000, spot(7), 50.0, 90.0)
        producer.flush(10)
        expected = {2: 2, 3: 1, 4: 1, 6: 2, 7: 2}
        eventually(
            lambda: all(seen(i, n) for i, n in expected.items()),
            60,
            "every expected hazard",
        )
        # the rest is decided too: ticks have run past every scenario by now
        producer.produce(events, b"\xff not an event", key=b"AAA00000000000001")
        producer.flush(10)
        eventually(lambda: len(platform.read(KafkaTopic.DLQ)) >= 1, 30, "the dead letter")
        assert app.poll() is None
        yield platform, by_spot()


def test_fewer_than_k_cars_make_no_hazard(
    scenarios: tuple[AppPlatform, dict[int, list[Hazard]]],
) -> None:
    _, found = scenarios
    assert found[1] == []


def test_k_cars_confirm_one_hazard_and_a_crash_is_another(
    scenarios: tuple[AppPlatform, dict[int, list[Hazard]]],
) -> None:
    _, found = scenarios
    braking = [x for x in found[2] if x.group is HazardGroup.EMERGENCY_BRAKE]
    crash = [x for x in found[2] if x.group is HazardGroup.POST_CRASH]
    assert [x.state for x in braking] == [HazardState.CONFIRMED]
    assert (braking[0].cause, braking[0].sub_cause, braking[0].reporters) == (99, 1, 3)
    assert [(x.state, x.cause, x.reporters) for x in crash] == [(HazardState.CONFIRMED, 92, 1)]
    assert braking[0].hazard_id != crash[0].hazard_id
    assert braking[0].cell == crash[0].cell == cell_of(*spot(2))
    assert braking[0].confirmed_ts - braking[0].first_ts == 10_000


def test_a_span_across_a_window_edge_and_a_cell_border_confirm(
    scenarios: tuple[AppPlatform, dict[int, list[Hazard]]],
) -> None:
    _, found = scenarios
    assert [x.state for x in found[3]] == [HazardState.CONFIRMED]
    assert [x.state for x in found[4]] == [HazardState.CONFIRMED]


def test_the_same_car_counts_once(scenarios: tuple[AppPlatform, dict[int, list[Hazard]]]) -> None:
    _, found = scenarios
    assert found[5] == []


def test_ticks_expire_a_hazard(scenarios: tuple[AppPlatform, dict[int, list[Hazard]]]) -> None:
    _, found = scenarios
    confirmed, cleared = found[6]
    assert (confirmed.state, confirmed.cause) == (HazardState.CONFIRMED, 94)
    assert (cleared.state, cleared.reason) == (HazardState.CLEARED, ClearReason.EXPIRED)
    assert cleared.hazard_id == confirmed.hazard_id
    assert cleared.ts == confirmed.expires_at


def test_passing_cars_clear_a_hazard(
    scenarios: tuple[AppPlatform, dict[int, list[Hazard]]],
) -> None:
    _, found = scenarios
    confirmed, cleared = found[7]
    assert (cleared.state, cleared.reason, cleared.passed) == (
        HazardState.CLEARED,
        ClearReason.PASSED,
        2,
    )
    assert cleared.hazard_id == confirmed.hazard_id


def test_records_are_keyed_by_cell_and_bad_input_is_dead_lettered(
    scenarios: tuple[AppPlatform, dict[int, list[Hazard]]],
) -> None:
    platform, _ = scenarios
    records = platform.read(KafkaTopic.HAZARDS)
    assert records
    for record in records:
        hazard = msgspec.json.decode(record.value() or b"", type=Hazard)
        assert record.key() == hazard.cell.encode()
    [letter] = platform.read(KafkaTopic.DLQ)
    assert header(letter, h.DLQ_REASON) == b"invalid-key"  # no gateway headers at all
    assert letter.value() == b"\xff not an event"
