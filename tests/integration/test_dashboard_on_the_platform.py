"""The dashboard on the running platform (gateway, tracker, fleet app and API as processes, real
MQTT cars on the real Mosquitto, Debian's chromium): the cars the map renders are where the cars
are and fresh, a trunk opened from the page reaches the parked car and the page shows it
succeeded, and a viewer gets no buttons. Screenshots in build/test-artefacts/."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.sessions import dashboard_link, issue_login_code
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings
from fleetlink.sim.streets import write_street_map
from fleetlink.stack import LocalStack
from tests.support.browser import chromium, local_only
from tests.support.commands import Platform, command_platform
from tests.support.stack import REPO, user_token

ARTEFACTS = REPO / "build" / "test-artefacts"
CARS = [f"DSHPLT1JZXW{n:06d}" for n in range(10)]
STEP_DEG = 0.00002  # about 2.2 m north each half second: 16 km/h
RENDERED = """() => (window.fleetlinkMap
  ? window.fleetlinkMap.queryRenderedFeatures({layers: ["vehicles"]}).map(f => ({
      vin: f.properties.vin, ts: f.properties.ts,
      lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1]}))
  : [])"""


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, local_stack: LocalStack, stack_config: Settings
) -> Iterator[Platform]:
    fleet_app = {"apps": {"fleet": {"state_every_s": 1.0}, "commit_interval_s": 1.0}}
    with command_platform(
        tmp_path_factory.mktemp("dashboard"),
        stack_config,
        sections=fleet_app,
        beside_api=[("app-fleet", ["app", "run", "fleet"])],
    ) as running:
        write_street_map(running.settings.street_map_file())
        yield running


class Drive:
    """The simulator of this test: each car reports every half second, the odd ones moving
    north; ``truth`` is where each car was at each report (its clock)."""

    def __init__(self, platform: Platform) -> None:
        self._garage = platform.garage
        self.truth: dict[str, list[tuple[float, float, float]]] = {vin: [] for vin in CARS}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Drive:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for n, vin in enumerate(CARS):
                state = self._garage.agents[vin].state
                if n % 2:
                    state.latitude += STEP_DEG
                self.truth[vin].append((time.time(), state.latitude, state.longitude))
                self._garage.drive(vin)

    def where(self, vin: str, at: float) -> tuple[float, float]:
        """Where ``vin`` was at ``at`` (its last report before)."""
        before = [(lat, lon) for ts, lat, lon in self.truth[vin] if ts <= at]
        return before[-1] if before else self.truth[vin][0][1:]


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = math.radians(b[0] - a[0])
    dlon = math.radians(b[1] - a[1]) * math.cos(math.radians(a[0]))
    return 6_371_000 * math.hypot(dlat, dlon)


def log_in(page: Page, platform: Platform, user: str, role: UserRole) -> list[str]:
    user_token(platform.settings, user, role, CARS[:1] if role is UserRole.OWNER else None)
    code = issue_login_code(
        signing_key(platform.settings, SigningPurpose.API_TOKENS), user, ttl_s=300
    )
    refused = local_only(page, platform.api_url)
    page.goto(dashboard_link(platform.api_url, code))
    page.wait_for_selector("#app:not([hidden])", timeout=20_000)
    return refused


def test_the_map_shows_the_cars_where_they_are_and_a_trunk_opens_from_the_page(
    platform: Platform,
) -> None:
    for n, vin in enumerate(CARS):
        car = platform.garage.agent(vin)
        car.state.latitude, car.state.longitude = 52.5115 + 0.0012 * n, 13.3825 + 0.0009 * n
        platform.start_car(vin)
    with Drive(platform) as drive, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        refused = log_in(page, platform, "ada-ui", UserRole.FLEET_ADMIN)
        page.wait_for_function(
            f"() => ({RENDERED})().filter(f => f.vin.startsWith('DSHPLT')).length >= {len(CARS)}",
            timeout=30_000,
        )
        # five looks, a second apart: every car rendered within 30 m of where it is, 3 s fresh
        looks, good = 0, 0
        for _ in range(5):
            seen = {f["vin"]: f for f in page.evaluate(RENDERED)}
            now = time.time()
            for vin in CARS:
                looks += 1
                shown = seen.get(vin)
                if shown is None:
                    continue
                off = metres(drive.where(vin, now), (shown["lat"], shown["lon"]))
                age = now - shown["ts"] / 1000
                good += off <= 30 and age <= 3
            time.sleep(1)
        print(f"{good} of {looks} looks at the rendered cars within 30 m and 3 s of the truth")
        assert good >= 0.95 * looks, f"{good} of {looks} looks within 30 m and 3 s"

        # the trunk of a parked car (the even ones stand), pressed in the page
        page.click(f"#vehicles tbody tr[data-vin='{CARS[0]}']")
        page.wait_for_selector("#vehicle button[data-command='trunk.open']")
        page.click("#vehicle button[data-command='trunk.open']")
        page.click("#vehicle .confirm button.yes")  # unlock and trunk ask first
        page.wait_for_selector("#vehicle table.history td.state.succeeded", timeout=20_000)
        assert platform.garage.agents[CARS[0]].state.trunk_open is True
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / "dashboard-vehicle.png"))

        viewer = browser.new_page()
        viewer.on("pageerror", lambda error: errors.append(str(error)))
        refused += log_in(viewer, platform, "vera-ui", UserRole.VIEWER)
        viewer.wait_for_selector(f"#vehicles tbody tr[data-vin='{CARS[0]}']", timeout=20_000)
        viewer.click(f"#vehicles tbody tr[data-vin='{CARS[0]}']")
        viewer.wait_for_selector("#vehicle table.history td.state.succeeded", timeout=20_000)
        assert viewer.locator("#vehicle button[data-command]").count() == 0
    assert refused == [], f"the pages asked the internet for {refused}"
    assert errors == [], errors
