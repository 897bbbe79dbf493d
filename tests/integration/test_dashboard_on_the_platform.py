"""The dashboard on the running platform (gateway, tracker, fleet app and API as processes, real
MQTT cars on the real Mosquitto, Debian's chromium): the cars the map renders are where the cars
are and fresh, a trunk opened from the page reaches the parked car and the page shows it
succeeded, and a viewer gets no buttons. Screenshots in build/test-artefacts/."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from playwright.sync_api import Page

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.api.platform import LAG_EVERY_S
from fleetlink.apps.registry import APPS
from fleetlink.apps.runtime.metrics import app_group
from fleetlink.contracts import headers as h
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.sessions import dashboard_link, issue_login_code
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings
from fleetlink.sim.streets import write_street_map
from fleetlink.stack import LocalStack
from tests.support.browser import browser_versions, chromium, local_only
from tests.support.commands import Platform, command_platform
from tests.support.polling import eventually
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
    fleet_app = {
        "apps": {"fleet": {"state_every_s": 1.0}, "commit_interval_s": 1.0},
        "api": {"platform_every_s": 1.0},
    }
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
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        start = time.monotonic()
        for tick in itertools.count(1):  # on a steady schedule: a steady rate into Kafka
            if self._stop.wait(max(0.0, start + tick * 0.5 - time.monotonic())):
                return
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
    print(browser_versions())
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
        # a look a second: once warm, three looks in a row must find 95 % of the rendered
        # cars within 30 m of where they are and 3 s fresh
        history: list[tuple[int, int, list[tuple[str, int, float]]]] = []
        for _ in range(15):
            seen = {f["vin"]: f for f in page.evaluate(RENDERED)}
            now, good, bad = time.time(), 0, []
            for vin in CARS:
                shown = seen.get(vin)
                off = (
                    math.inf
                    if shown is None
                    else metres(drive.where(vin, now), (shown["lat"], shown["lon"]))
                )
                age = math.inf if shown is None else now - shown["ts"] / 1000
                good += off <= 30 and age <= 3
                if off > 30 or age > 3:
                    bad.append((vin[-2:], round(off), round(age, 1)))
            history.append((good, len(CARS), bad))
            last = history[-3:]
            if len(last) == 3 and sum(g for g, _, _ in last) >= 0.95 * sum(n for _, n, _ in last):
                break
            time.sleep(1)
        print(f"looks (good of all, misses): {history}")
        last = history[-3:]
        assert sum(g for g, _, _ in last) >= 0.95 * sum(n for _, n, _ in last), history

        # the trunk of a parked car (the even ones stand), pressed in the page
        page.click(f"#vehicles tbody tr[data-vin='{CARS[0]}']")
        page.wait_for_selector("#vehicle button[data-command='trunk.open']")
        page.click("#vehicle button[data-command='trunk.open']")
        page.click("#vehicle .confirm button.yes")  # unlock and trunk ask first
        page.wait_for_selector("#vehicle table.history td.state.succeeded", timeout=20_000)
        assert platform.garage.agents[CARS[0]].state.trunk_open is True
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / "dashboard-vehicle.png"))

        check_the_platform_panel(page, platform, drive)

        viewer = browser.new_page()
        viewer.on("pageerror", lambda error: errors.append(str(error)))
        refused += log_in(viewer, platform, "vera-ui", UserRole.VIEWER)
        viewer.wait_for_selector(f"#vehicles tbody tr[data-vin='{CARS[0]}']", timeout=20_000)
        viewer.click(f"#vehicles tbody tr[data-vin='{CARS[0]}']")
        viewer.wait_for_selector("#vehicle table.history td.state.succeeded", timeout=20_000)
        assert viewer.locator("#vehicle button[data-command]").count() == 0
    assert refused == [], f"the pages asked the internet for {refused}"
    assert errors == [], errors


SLACK_S = 0.3  # how far a sample's moment may be from the brokers' reading of their ends


class TelemetryCount:
    """Kafka's own count of ``fleet.telemetry`` (its partitions' ends), every quarter second."""

    def __init__(self, platform: Platform) -> None:
        self._topic = platform.settings.topic_map()[KafkaTopic.TELEMETRY]
        self._consumer = KafkaClients.of(platform.settings).reader("panel-check")
        self.ends: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        metadata = self._consumer.list_topics(self._topic, timeout=5).topics[self._topic]
        parts = [TopicPartition(self._topic, p) for p in metadata.partitions]
        while not self._stop.wait(0.25):
            ends = [
                self._consumer.get_watermark_offsets(p, timeout=5, cached=False)[1] for p in parts
            ]
            self.ends.append((time.time(), sum(ends)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()

    def rates(self, since: float, until: float) -> tuple[float, float] | None:
        """The least and most records a second over [since, until] with either end moved by up
        to SLACK_S (the cars write in bursts: a sample a little early or late on a burst's edge
        counts a whole burst more or less), or None while that is not inside the count."""
        if not self.ends or self.ends[0][0] > since - SLACK_S or self.ends[-1][0] < until + SLACK_S:
            return None
        span = until - since
        moves = (-SLACK_S, 0.0, SLACK_S)
        found = [(self._at(until + b) - self._at(since + a)) / span for a in moves for b in moves]
        return min(found), max(found)

    def _at(self, moment: float) -> float:
        (t0, n0) = [(t, n) for t, n in self.ends if t <= moment][-1]
        (t1, n1) = next((t, n) for t, n in self.ends if t >= moment)
        return n0 if t1 == t0 else n0 + (n1 - n0) * (moment - t0) / (t1 - t0)


def fleet_app_lag(platform: Platform) -> int:
    """The fleet app's lag measured here, with the admin API: its group's committed offsets
    (none: 0) behind the end of each partition of its inputs and its repartition topics."""
    kafka = KafkaClients.of(platform.settings)
    group = app_group(platform.settings, "fleet")
    admin = kafka.admin()  # held until it answered: a dropped client never does
    asked = [ConsumerGroupTopicPartitions(group)]
    answer = admin.list_consumer_group_offsets(asked)[group].result(10)
    committed = {(p.topic, p.partition): p.offset for p in answer.topic_partitions}
    inputs = set(platform.settings.topic_map().names(APPS["fleet"].inputs))
    consumer = kafka.reader("lag-check")
    try:
        lag = 0
        for topic, metadata in consumer.list_topics(timeout=5).topics.items():
            if topic not in inputs and not topic.startswith(f"repartition__{group}--"):
                continue
            for partition in metadata.partitions:
                at = TopicPartition(topic, partition)
                _, end = consumer.get_watermark_offsets(at, timeout=5, cached=False)
                lag += end - max(committed.get((topic, partition), 0), 0)
        return lag
    finally:
        consumer.close()


def check_the_platform_panel(page: Page, platform: Platform, drive: Drive) -> None:
    """The panel's figures against Kafka's own, measured here: records per second into
    fleet.telemetry over the panel's own window, dead letters by reason (read from fleet.dlq),
    cars online, commands by state (the API's summary), and, once the cars are quiet, the
    fleet app's lag."""
    dlq = platform.settings.topic_map()[KafkaTopic.DLQ]
    producer = KafkaClients.of(platform.settings).producer()
    for _ in range(3):  # what the gateway writes for a payload it cannot read
        producer.produce(dlq, b"{", CARS[1].encode(), headers=[(h.DLQ_REASON, b"schema")])
    assert producer.flush(10) == 0
    del producer
    page.click("#tabs button[data-tab=platform]")
    telemetry = "#platform tr[data-topic='fleet.telemetry'] td.per-s"
    page.wait_for_selector(telemetry, timeout=20_000)
    # Kafka's own count beside it: the rate over exactly the panel's window
    count = TelemetryCount(platform)
    try:
        deadline = time.monotonic() + 40
        while True:
            with platform.client() as client:
                panel = client.get("/v1/platform").json()
            until = panel["sampled_at"] / 1000
            rates = count.rates(until - panel["window_s"], until)
            if rates is not None or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        count.close()
    assert rates is not None, "the panel's window never lay inside the test's count"
    [row] = [t for t in panel["topics"] if t["topic"] == "fleet.telemetry"]
    low, high = rates
    print(f"records/s into fleet.telemetry: panel {row['per_s']}, Kafka {low:.2f}-{high:.2f}")
    assert low * 0.98 <= row["per_s"] <= high * 1.02
    page.wait_for_function(  # and the page shows it
        f'() => Number(document.querySelector("{telemetry}").textContent) > 0'
    )
    reasons: dict[str, int] = {}
    for record in read_topic(KafkaClients.of(platform.settings), dlq):
        reason = dict(record.headers() or []).get(h.DLQ_REASON, b"unknown").decode()
        reasons[reason] = reasons.get(reason, 0) + 1
    page.wait_for_function(
        "() => document.querySelector(\"#platform tr[data-reason='schema'] td.count\")"
        f"?.textContent === '{reasons['schema']}'",
        timeout=10_000,
    )
    assert page.locator("#platform p.summary").get_attribute("data-online") == str(len(CARS))
    with platform.client() as client:
        states = client.get("/v1/commands/summary").json()["states"]
    page.wait_for_function(
        "() => document.querySelector(\"#platform tr[data-state='succeeded'] td.count\")"
        f"?.textContent === '{states['succeeded']}'",
        timeout=10_000,
    )
    drive.stop()  # a lag moves with every record: compared once the cars are quiet
    # the panel measures lags every LAG_EVERY_S: it shows what Kafka said within that time
    recent: list[tuple[float, int]] = []

    def lags_agree() -> bool:
        recent.append((time.monotonic(), fleet_app_lag(platform)))
        shown = int(page.locator("#platform tr[data-app='fleet'] td.lag").inner_text())
        window = [m for t, m in recent if t >= time.monotonic() - LAG_EVERY_S - 3]
        print(f"fleet app lag: panel {shown}, Kafka lately {window}")
        return any(abs(shown - m) <= 0.05 * max(m, 20) for m in window)

    eventually(lags_agree, 6 * LAG_EVERY_S, "the panel's lag as Kafka tells it", interval=1)
    page.screenshot(path=str(ARTEFACTS / "dashboard-platform.png"))
