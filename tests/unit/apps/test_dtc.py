"""Diagnostic trouble codes, pure: one alert per code and day, cleared resolves, severity."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetlink.apps.maintenance.dtc import DtcParams, Lamps, code_info, dtc_step, severity_of
from fleetlink.contracts.alerts import AlertState, Severity
from tests.support.strategies import JSON

VIN = "WVWZZZ1JZXW000001"
T0 = 1_800_000_000_000
HOUR_MS = 3_600_000


def step(state: dict[str, Any], ts: int, **data: Any) -> list[tuple[str, str, str, int]]:
    return [
        (a.subject, a.state.value, a.severity.value, a.raised_ts)
        for a in dtc_step(state, VIN, ts, data, DtcParams())
    ]


def test_the_same_code_twice_gives_one_alert_and_cleared_resolves_it() -> None:
    state: dict[str, Any] = {}
    assert step(state, T0, code="P0300", status="raised") == [("P0300", "raised", "warning", T0)]
    assert step(state, T0 + HOUR_MS, code="P0300", status="raised") == []
    assert step(state, T0 + 2 * HOUR_MS, code="P0300", status="cleared") == [
        ("P0300", "resolved", "warning", T0)
    ]
    assert step(state, T0 + 3 * HOUR_MS, code="P0300", status="cleared") == []


def test_a_code_back_within_a_day_raises_nothing_after_a_day_a_new_alert() -> None:
    state: dict[str, Any] = {}
    [first] = dtc_step(state, VIN, T0, {"code": "P0420", "status": "raised"}, DtcParams())
    step(state, T0 + HOUR_MS, code="P0420", status="cleared")
    assert step(state, T0 + 23 * HOUR_MS, code="P0420", status="raised") == []
    [again] = dtc_step(
        state, VIN, T0 + 24 * HOUR_MS, {"code": "P0420", "status": "raised"}, DtcParams()
    )
    assert again.alert_id != first.alert_id
    assert again.alert_id == f"{VIN}/dtc/P0420/{T0 + 24 * HOUR_MS}"
    assert (again.state, again.title) == (AlertState.RAISED, code_info("P0420").title)


@pytest.mark.parametrize(
    ("code", "lamps", "confirmation", "severity"),
    [
        ("B1000", None, "confirmed", Severity.INFO),  # the table's class
        ("B1000", Lamps(red_stop=True), "confirmed", Severity.CRITICAL),
        ("B1000", Lamps(amber=True), "confirmed", Severity.WARNING),
        ("B1000", Lamps(mil=True), "permanent", Severity.WARNING),
        ("P0300", Lamps(protect=True), "confirmed", Severity.INFO),
        ("P0300", Lamps(mil=True), "pending", Severity.INFO),  # seen once, not stored yet
        ("U0100", None, "pending", Severity.CRITICAL),  # a critical code is critical
    ],
)
def test_severity_from_lamps_confirmation_and_the_code(
    code: str, lamps: Lamps | None, confirmation: str, severity: Severity
) -> None:
    assert severity_of(code_info(code), lamps, confirmation) is severity


def test_lamps_sent_by_the_car_decide_and_go_into_the_evidence() -> None:
    state: dict[str, Any] = {}
    lamps = {"red_stop": True, "mil": True}
    [alert] = dtc_step(
        state, VIN, T0, {"code": "c0035", "status": "raised", "lamps": lamps}, DtcParams()
    )
    assert (alert.subject, alert.severity) == ("C0035", Severity.CRITICAL)
    assert alert.evidence["lamps"] == {
        "mil": True,
        "red_stop": True,
        "amber": False,
        "protect": False,
    }


def test_an_unknown_code_is_named_by_its_system() -> None:
    assert code_info("U3FFF").title == "network trouble code U3FFF"
    assert code_info("X0000").title == "unknown trouble code X0000"


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(
        st.sampled_from(["code", "status", "lamps", "confirmation", "x"]), JSON, max_size=5
    ),
    ts=st.integers(0, 2**42),
)
def test_any_dtc_event_gives_alerts_or_none(data: dict[str, Any], ts: int) -> None:
    state: dict[str, Any] = {}
    for alert in dtc_step(state, VIN, ts, data, DtcParams()):
        assert alert.state in (AlertState.RAISED, AlertState.RESOLVED)


def test_the_shipped_table_describes_the_common_codes_and_every_simulated_one() -> None:
    import re

    from fleetlink.apps.maintenance.dtc_codes import CODES
    from fleetlink.sim.events import _DTC_CODES
    from fleetlink.sim.health import DTC_LAMPS

    assert len(CODES) >= 80
    assert all(re.fullmatch(r"[PCBU][0-3][0-9A-F]{3}", code) for code in CODES)
    assert set(_DTC_CODES) | set(DTC_LAMPS) <= set(CODES)
    assert all(info.title and info.action for info in CODES.values())
    # no lamp status: the table's class decides; the dangerous ones are critical
    for code in ("P0217", "P0524", "U0100", "P0AA6"):
        assert severity_of(code_info(code), None, "confirmed") is Severity.CRITICAL, code
    assert code_info("P0305").title == "Cylinder 5 misfire detected"
