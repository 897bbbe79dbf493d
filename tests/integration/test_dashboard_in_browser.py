"""The dashboard in a real headless Chromium, the API on an in-memory Kafka: the login link's
one-time code opens a cookie session (and leaves the address bar), the map renders every car
where its state puts it, coloured by state, and follows the live stream; the page asks nothing
of the internet and logs no error. A screenshot is kept in build/test-artefacts/."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fleetlink.contracts.alerts import Alert, AlertKind, AlertState, Severity
from fleetlink.contracts.codec import encode
from fleetlink.contracts.fleet import Motion, VehicleState
from fleetlink.contracts.geofences import FenceCircle, GeofenceDefinition
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.sessions import dashboard_link, issue_login_code
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings
from fleetlink.sim.flood import vins_for
from fleetlink.sim.streets import write_street_map
from fleetlink.testing.memory_kafka import MemoryKafka
from tests.support.api import hermetic_app
from tests.support.browser import browser_versions, chromium, local_only, served
from tests.support.stack import REPO, user_token
from tests.unit.api.test_hazards_api import hazard
from tests.unit.api.test_parking_api import cell_record, spot

ARTEFACTS = REPO / "build" / "test-artefacts"
MIDDLE = (52.5165, 13.3925)
VEHICLES = 40
ALERTING = 2  # the car with an open warning: parked, online
RENDERED = """() => {
  const map = window.fleetlinkMap;
  if (!map) return [];
  return map.queryRenderedFeatures({layers: ["vehicles"]}).map(f => ({
    vin: f.properties.vin, shown: f.properties.shown,
    lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1],
  }));
}"""


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = math.radians(b[0] - a[0])
    dlon = math.radians(b[1] - a[1]) * math.cos(math.radians(a[0]))
    return 6_371_000 * math.hypot(dlat, dlon)


def states(ts: int) -> list[VehicleState]:
    fleet = []
    for n, vin in enumerate(vins_for(VEHICLES, "DSH")):
        fleet.append(
            VehicleState(
                vin=vin,
                ts=ts,
                online=n % 5 != 0,
                last_seen=ts,
                motion=Motion.DRIVING if n % 2 else Motion.PARKED,
                latitude=52.511 + 0.0003 * (n % 8),
                longitude=13.381 + 0.0004 * (n // 8),
                speed_kmh=30.0 if n % 2 else 0.0,
            )
        )
    return fleet


def by_vin(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {feature["vin"]: feature for feature in rendered}


def test_the_map_shows_the_fleet_live_after_a_one_time_login(tmp_path: Path) -> None:
    app, kafka, settings = hermetic_app(tmp_path)
    write_street_map(settings.street_map_file())
    topic = settings.topic_map()[KafkaTopic.VEHICLE_STATE]
    fleet = states(ts=1_800_000_000_000)
    for state in fleet:
        kafka.append(topic, encode(state), state.vin.encode())
    overlays(kafka, settings)
    user_token(settings, "vera", UserRole.VIEWER)
    key = signing_key(settings, SigningPurpose.API_TOKENS)
    print(browser_versions())
    with served(app) as origin, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        refused = local_only(page, origin)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        code = issue_login_code(key, "vera", ttl_s=300)
        page.goto(dashboard_link(origin, code))
        page.wait_for_function(f"() => ({RENDERED})().length >= {VEHICLES}", timeout=30_000)
        assert "code=" not in page.url  # the credential left the address bar
        assert page.locator("#who").inner_text() == "vera (viewer)"

        rendered = by_vin(page.evaluate(RENDERED))
        assert set(rendered) == {state.vin for state in fleet}
        for state in fleet:
            shown = rendered[state.vin]
            assert state.latitude is not None
            assert state.longitude is not None
            assert metres((state.latitude, state.longitude), (shown["lat"], shown["lon"])) < 5
            assert shown["shown"] == (state.motion.value if state.online else "offline")
        assert page.locator("#vehicles tbody tr").count() == VEHICLES
        assert (
            page.locator("#counts").inner_text() == "40 vehicles: 16 driving, 16 parked, 8 offline"
        )
        for layer in ("hazards", "parking", "geofences"):  # what the API made, drawn
            drawn = f"window.fleetlinkMap.queryRenderedFeatures({{layers: ['{layer}']}})"
            page.wait_for_function(f"() => {drawn}.length > 0", timeout=10_000)
        page.fill("#search", fleet[3].vin.lower())
        assert page.locator("#vehicles tbody tr").count() == 1

        # a car moves: the live stream brings it, the map redraws within a second or two
        moved = VehicleState(**{**_fields(fleet[1]), "ts": fleet[1].ts + 1000, "latitude": 52.5205})
        kafka.append(topic, encode(moved), moved.vin.encode())
        page.wait_for_function(
            f"() => ({RENDERED})().some(f => f.vin === '{moved.vin}' && f.lat > 52.52)",
            timeout=10_000,
        )
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / "dashboard-map.png"))
        assert errors == [], errors

        # the link works once (its second use is refused: 401), the session goes on in its
        # cookie; logging out ends it (the old cookie is refused: 401)
        page.goto(dashboard_link(origin, code))
        page.wait_for_function(f"() => ({RENDERED})().length >= {VEHICLES}", timeout=30_000)
        page.click("#logout")
        page.wait_for_selector("#login:not([hidden])", timeout=10_000)
        page.reload()
        page.wait_for_selector("#login:not([hidden])", timeout=10_000)
    assert refused == [], f"the page asked the internet for {refused}"
    unauthorised = "Failed to load resource: the server responded with a status of 401"
    assert [e for e in errors if not e.startswith(unauthorised)] == [], errors
    assert len(errors) == 3  # the used code; no session after logging out (twice: two loads)


def overlays(kafka: MemoryKafka, settings: Settings) -> None:
    """A hazard, a parking cell with two spots and a geofence in the middle of the city."""
    topics = settings.topic_map()
    ice = hazard("ice-1", MIDDLE)
    kafka.append(topics[KafkaTopic.HAZARDS], encode(ice), ice.cell.encode())
    cell = cell_record(MIDDLE, spot("a", MIDDLE), spot("b", MIDDLE))
    kafka.append(topics[KafkaTopic.PARKING], encode(cell), cell.cell.encode())
    car = states(0)[ALERTING]
    alert = Alert(
        alert_id=f"{car.vin}/dtc/P0300/1",
        vin=car.vin,
        kind=AlertKind.DTC,
        subject="P0300",
        severity=Severity.WARNING,
        state=AlertState.RAISED,
        ts=1,
        raised_ts=1,
        title="Misfire",
        action="see a workshop",
    )
    kafka.append(topics[KafkaTopic.ALERTS], encode(alert), car.vin.encode())
    depot = GeofenceDefinition(
        fence_id="depot",
        name="depot",
        owner="ada",
        created_at=1,
        circle=FenceCircle(latitude=MIDDLE[0], longitude=MIDDLE[1], radius_m=250.0),
    )
    kafka.append(topics[KafkaTopic.GEOFENCES], encode(depot), b"depot")


def _fields(state: VehicleState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in state.__struct_fields__}
