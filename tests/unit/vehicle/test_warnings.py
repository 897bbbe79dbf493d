"""The car's warning book: what it holds, what it drops, which warnings lie ahead."""

from __future__ import annotations

from fleetlink.contracts.codec import encode
from fleetlink.contracts.geo import cell_of
from fleetlink.contracts.hazards import Hazard, HazardGroup, HazardState
from fleetlink.contracts.topics import MqttTopic
from fleetlink.vehicle.warnings import WarningBook

NOW = 1_800_000_000_000
SPOT = (52.5200, 13.4050)  # the hazard; the reporters drove east (90 degrees)


def hazard(state: HazardState = HazardState.CONFIRMED, expires_in_ms: int = 60_000) -> Hazard:
    return Hazard(
        hazard_id="h1",
        state=state,
        group=HazardGroup.EMERGENCY_BRAKE,
        cause=99,
        sub_cause=1,
        cell=cell_of(*SPOT),
        latitude=SPOT[0],
        longitude=SPOT[1],
        reporters=3,
        first_ts=NOW,
        confirmed_ts=NOW,
        ts=NOW,
        expires_at=NOW + expires_in_ms,
        heading_deg=90.0,
    )


TOPIC = MqttTopic.geo_warning(cell_of(*SPOT), "h1")


def test_it_holds_a_warning_until_withdrawn_cleared_or_expired() -> None:
    book = WarningBook()
    assert book.receive(TOPIC, encode(hazard()), NOW)
    assert [h.hazard_id for h in book.active(NOW)] == ["h1"]
    assert not book.receive(TOPIC, b"", NOW)
    assert book.active(NOW) == []
    assert book.withdrawn == 1
    book.receive(TOPIC, encode(hazard()), NOW)
    book.receive(TOPIC, encode(hazard(HazardState.CLEARED)), NOW)
    assert book.active(NOW) == []
    book.receive(TOPIC, encode(hazard(expires_in_ms=10)), NOW)
    assert book.active(NOW + 11) == []
    assert book.first_heard_ms == {"h1": NOW}


def test_garbage_is_counted_not_held() -> None:
    book = WarningBook()
    assert not book.receive(TOPIC, b"\xff", NOW)
    assert not book.receive("geo/x/warnings", encode(hazard()), NOW)
    assert not book.receive(MqttTopic.geo_warning("c", "other-id"), encode(hazard()), NOW)
    assert (book.bad, book.held) == (2, {})


def test_only_cars_driving_towards_it_the_reporters_way_are_warned() -> None:
    book = WarningBook()
    book.receive(TOPIC, encode(hazard()), NOW)
    west_of_it = (SPOT[0], SPOT[1] - 0.005)  # about 340 m
    east_of_it = (SPOT[0], SPOT[1] + 0.005)
    assert [h.hazard_id for h in book.ahead(*west_of_it, 90.0, NOW)] == ["h1"]
    assert book.ahead(*west_of_it, 270.0, NOW) == []  # driving away from it
    assert book.ahead(*east_of_it, 270.0, NOW) == []  # towards it, but the other way round
    assert book.ahead(SPOT[0], SPOT[1] - 0.05, 90.0, NOW) == []  # 3.4 km away
