"""The trouble codes fleetlink describes: the generic SAE J2012 codes a fleet meets most, by
their standard names, each with a severity (without lamp status) and what to do.

Written here from the codes' standard definitions; a code not in the table is described by its
system (``dtc.code_info``). Manufacturer codes (P1xxx, B1xxx, ...) mean what each maker says:
a fleet adds its models' to this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fleetlink.contracts.alerts import Severity


@dataclass(frozen=True)
class CodeInfo:
    title: str
    severity: Severity  # without lamp status
    action: str


_STOP = "Stop when safe and call for assistance"
_ENGINE = "Book an engine check within days; reduce load meanwhile"
_SENSOR = "Book a check: a sensor or its wiring; the engine may run in a fallback mode"
_EMISSIONS = "Book an emissions check; the car may fail inspection"
_NEXT = "Note it for the next service"
_BRAKES = "ABS and stability control may be off: book a brake check soon"
_NETWORK = "Book a check of the control module and its bus wiring"
_GEARBOX = "Book a transmission check; avoid hard acceleration meanwhile"
_POWER = "Check the 12 V battery and the charging system"
_FUEL_CAP = "Check that the fuel cap closes; if it does, book an emissions check"

WARN, INFO, CRIT = Severity.WARNING, Severity.INFO, Severity.CRITICAL

_TABLE: Final[tuple[tuple[str, str, Severity, str], ...]] = (
    ("P0010", 'Camshaft position actuator "A" circuit (bank 1)', WARN, _ENGINE),
    ("P0011", 'Camshaft position "A" timing over-advanced (bank 1)', WARN, _ENGINE),
    ("P0016", "Crankshaft / camshaft position correlation (bank 1 sensor A)", WARN, _ENGINE),
    ("P0101", "Mass air flow circuit range/performance", WARN, _SENSOR),
    ("P0102", "Mass air flow circuit low", WARN, _SENSOR),
    ("P0103", "Mass air flow circuit high", WARN, _SENSOR),
    ("P0106", "Manifold absolute pressure circuit range/performance", WARN, _SENSOR),
    ("P0107", "Manifold absolute pressure circuit low", WARN, _SENSOR),
    ("P0108", "Manifold absolute pressure circuit high", WARN, _SENSOR),
    ("P0112", "Intake air temperature sensor circuit low", INFO, _SENSOR),
    ("P0113", "Intake air temperature sensor circuit high", INFO, _SENSOR),
    ("P0116", "Engine coolant temperature circuit range/performance", WARN, _SENSOR),
    ("P0117", "Engine coolant temperature sensor circuit low", WARN, _SENSOR),
    ("P0118", "Engine coolant temperature sensor circuit high", WARN, _SENSOR),
    ("P0121", 'Throttle/pedal position sensor "A" range/performance', WARN, _SENSOR),
    ("P0122", 'Throttle/pedal position sensor "A" circuit low', WARN, _SENSOR),
    ("P0123", 'Throttle/pedal position sensor "A" circuit high', WARN, _SENSOR),
    ("P0128", "Coolant below thermostat regulating temperature", INFO, _NEXT),
    ("P0131", "O2 sensor circuit low voltage (bank 1 sensor 1)", INFO, _EMISSIONS),
    ("P0132", "O2 sensor circuit high voltage (bank 1 sensor 1)", INFO, _EMISSIONS),
    ("P0133", "O2 sensor circuit slow response (bank 1 sensor 1)", INFO, _EMISSIONS),
    ("P0134", "O2 sensor circuit no activity (bank 1 sensor 1)", INFO, _EMISSIONS),
    ("P0135", "O2 sensor heater circuit (bank 1 sensor 1)", INFO, _EMISSIONS),
    ("P0141", "O2 sensor heater circuit (bank 1 sensor 2)", INFO, _EMISSIONS),
    ("P0171", "System too lean (bank 1)", WARN, _ENGINE),
    ("P0172", "System too rich (bank 1)", WARN, _ENGINE),
    ("P0174", "System too lean (bank 2)", WARN, _ENGINE),
    ("P0175", "System too rich (bank 2)", WARN, _ENGINE),
    ("P0217", "Engine coolant over temperature", CRIT, f"{_STOP}: the engine is overheating"),
    ("P0218", "Transmission fluid over temperature", WARN, _GEARBOX),
    ("P0219", "Engine overspeed", WARN, _ENGINE),
    ("P0230", "Fuel pump primary circuit", WARN, f"{_ENGINE}: the engine may stall"),
    ("P0300", "Random/multiple cylinder misfire detected", WARN, _ENGINE),
    *((f"P030{n}", f"Cylinder {n} misfire detected", WARN, _ENGINE) for n in range(1, 9)),
    ("P0325", "Knock sensor 1 circuit (bank 1)", WARN, _SENSOR),
    ("P0335", 'Crankshaft position sensor "A" circuit', WARN, f"{_ENGINE}: it may not restart"),
    ("P0340", 'Camshaft position sensor "A" circuit (bank 1)', WARN, _ENGINE),
    ("P0380", 'Glow plug/heater circuit "A"', INFO, _NEXT),
    ("P0401", "Exhaust gas recirculation flow insufficient", WARN, _EMISSIONS),
    ("P0402", "Exhaust gas recirculation flow excessive", WARN, _EMISSIONS),
    ("P0411", "Secondary air injection incorrect flow", INFO, _EMISSIONS),
    ("P0420", "Catalyst system efficiency below threshold (bank 1)", WARN, _EMISSIONS),
    ("P0430", "Catalyst system efficiency below threshold (bank 2)", WARN, _EMISSIONS),
    ("P0440", "Evaporative emission system", INFO, _EMISSIONS),
    ("P0441", "Evaporative emission system incorrect purge flow", INFO, _EMISSIONS),
    ("P0442", "Evaporative emission system leak (small)", INFO, _FUEL_CAP),
    ("P0455", "Evaporative emission system leak (large)", INFO, _FUEL_CAP),
    ("P0456", "Evaporative emission system leak (very small)", INFO, _FUEL_CAP),
    ("P0480", "Cooling fan 1 control circuit", WARN, "Book a check soon: the engine may overheat"),
    ("P0500", 'Vehicle speed sensor "A"', WARN, _SENSOR),
    ("P0506", "Idle speed lower than expected", INFO, _NEXT),
    ("P0507", "Idle speed higher than expected", INFO, _NEXT),
    (
        "P0520",
        "Engine oil pressure sensor/switch circuit",
        WARN,
        "Check the oil level; book a check",
    ),
    ("P0524", "Engine oil pressure too low", CRIT, f"{_STOP}: driving on can destroy the engine"),
    ("P0562", "System voltage low", WARN, _POWER),
    ("P0563", "System voltage high", WARN, _POWER),
    ("P0571", 'Brake switch "A" circuit', WARN, "Book a check: brake lights and cruise control"),
    ("P0601", "Control module memory checksum error", WARN, _NETWORK),
    ("P0606", "Control module processor", WARN, _NETWORK),
    ("P0700", "Transmission control system (MIL request)", WARN, _GEARBOX),
    ("P0715", 'Input/turbine speed sensor "A" circuit', WARN, _GEARBOX),
    ("P0720", "Output speed sensor circuit", WARN, _GEARBOX),
    ("P0730", "Incorrect gear ratio", WARN, _GEARBOX),
    ("P0741", "Torque converter clutch performance or stuck off", WARN, _GEARBOX),
    ("P0A80", "Replace hybrid battery pack", WARN, "Book a traction battery check"),
    ("P0AA6", "Hybrid battery voltage system isolation fault", CRIT, f"{_STOP}: high voltage"),
    ("C0035", "Left front wheel speed sensor circuit", WARN, _BRAKES),
    ("C0040", "Right front wheel speed sensor circuit", WARN, _BRAKES),
    ("C0045", "Left rear wheel speed sensor circuit", WARN, _BRAKES),
    ("C0050", "Right rear wheel speed sensor circuit", WARN, _BRAKES),
    ("B1000", "Electronic control unit fault (body)", INFO, _NEXT),
    ("U0001", "High speed CAN communication bus", WARN, _NETWORK),
    ("U0073", 'Control module communication bus "A" off', WARN, _NETWORK),
    ("U0100", 'Lost communication with engine control module "A"', CRIT, _STOP),
    ("U0101", "Lost communication with transmission control module", WARN, _GEARBOX),
    ("U0121", "Lost communication with anti-lock brake module", WARN, _BRAKES),
    ("U0140", "Lost communication with body control module", INFO, _NETWORK),
    ("U0155", "Lost communication with instrument cluster", WARN, _NETWORK),
)

CODES: Final[dict[str, CodeInfo]] = {
    code: CodeInfo(title, severity, action) for code, title, severity, action in _TABLE
}
