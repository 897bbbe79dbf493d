"""Diagnostic trouble codes, pure: an alert per code a car raises, with its severity, meaning
and what to do; the same code again within ``repeat_quiet_s`` (24 h) raises no new alert,
``cleared`` resolves the open one.

Severity (research brief §4.4): critical when the red stop lamp is on (J1939 SPN 623) or the
code's own class is critical (a crash); warning when the amber lamp or the MIL is on with a
confirmed code; info for a pending code (seen once, not yet stored) or the protect lamp alone.
Without lamp status (a plain OBD-II car), the code's class in the table decides
(``dtc_codes``: the generic codes a fleet meets most; others by their system).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from fleetlink.apps.maintenance.dtc_codes import CODES, CodeInfo
from fleetlink.contracts.alerts import Alert, AlertKind, AlertState, Severity, alert_id

# J2012's first letter: the system a code belongs to
_SYSTEMS: Final = {"P": "powertrain", "C": "chassis", "B": "body", "U": "network"}


@dataclass(frozen=True)
class DtcParams:
    repeat_quiet_s: float = 86_400.0


class Lamps(msgspec.Struct, frozen=True):
    mil: bool = False
    red_stop: bool = False
    amber: bool = False
    protect: bool = False


def code_info(code: str) -> CodeInfo:
    known = CODES.get(code)
    if known is not None:
        return known
    system = _SYSTEMS.get(code[:1].upper(), "unknown")
    return CodeInfo(
        f"{system} trouble code {code}",
        Severity.WARNING,
        "Read the code with a workshop tool; book a check",
    )


def severity_of(info: CodeInfo, lamps: Lamps | None, confirmation: str) -> Severity:
    if (lamps is not None and lamps.red_stop) or info.severity is Severity.CRITICAL:
        return Severity.CRITICAL
    if confirmation == "pending":
        return Severity.INFO
    if lamps is not None:
        if lamps.amber or lamps.mil:
            return Severity.WARNING
        if lamps.protect:
            return Severity.INFO
    return info.severity


def dtc_step(
    state: dict[str, Any], vin: str, ts: int, data: Mapping[str, Any], params: DtcParams
) -> list[Alert]:
    """A car's ``dtc`` event (``code``, ``status`` raised or cleared, perhaps ``confirmation``
    and ``lamps``) into ``state`` (JSON-able, the car's own); the alerts it changes."""
    code = str(data.get("code", "")).strip().upper()
    if not code:
        return []
    codes: dict[str, Any] = state.setdefault("codes", {})
    known = codes.get(code, {})
    if data.get("status") == "cleared":
        open_alert = known.get("open")
        if open_alert is None:
            return []
        resolved = msgspec.structs.replace(
            msgspec.convert(open_alert, Alert), state=AlertState.RESOLVED, ts=ts
        )
        codes[code] = {**known, "open": None}
        return [resolved]
    last = known.get("raised_ts")
    if known.get("open") is not None or (
        last is not None and ts - int(last) < params.repeat_quiet_s * 1000
    ):
        return []  # the same code again: no new alert
    info = code_info(code)
    lamps = _lamps(data.get("lamps"))
    confirmation = str(data.get("confirmation", "confirmed"))
    alert = Alert(
        alert_id=alert_id(vin, AlertKind.DTC, code, ts),
        vin=vin,
        kind=AlertKind.DTC,
        subject=code,
        severity=severity_of(info, lamps, confirmation),
        state=AlertState.RAISED,
        ts=ts,
        raised_ts=ts,
        title=info.title,
        action=info.action,
        evidence={"code": code, "confirmation": confirmation}
        | ({} if lamps is None else {"lamps": msgspec.to_builtins(lamps)}),
    )
    codes[code] = {"open": msgspec.to_builtins(alert), "raised_ts": ts}
    return [alert]


def _lamps(raw: Any) -> Lamps | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        return msgspec.convert(raw, Lamps)
    except msgspec.ValidationError:
        return None
