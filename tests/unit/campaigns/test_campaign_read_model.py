"""The API's read model of campaigns on in-memory Kafka: the orchestrator's records in, tombstones
remove, unreadable records are skipped; and the summary a campaign page shows."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetlink.campaigns.read_model import (
    CampaignReadModel,
    apply_times,
    failure_reason,
    summarize,
)
from fleetlink.contracts.campaigns import (
    Campaign,
    CampaignSpec,
    CampaignState,
    CampaignVehicle,
    GroupProgress,
    RolloutState,
)
from fleetlink.contracts.codec import encode
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings, load_settings
from fleetlink.testing.memory_kafka import MemoryKafka

SPEC = CampaignSpec(name="spring", image="infotainment", version="2026.41")


def vin(n: int) -> str:
    return f"APXZZZ1JZXW{n:06d}"


def car(
    n: int, group: int, state: RolloutState, campaign_id: str = "c-1", **more: object
) -> CampaignVehicle:
    return CampaignVehicle(campaign_id, vin(n), group, state, "2026.41", ts=n, **more)  # type: ignore[arg-type]


def campaign(campaign_id: str, created_at: int = 1) -> Campaign:
    return Campaign(campaign_id, SPEC, "ada", created_at, CampaignState.RUNNING, ts=created_at)


def test_apply_times_are_nearest_rank_percentiles_of_real_cars() -> None:
    times = apply_times(list(range(100, 0, -1)))  # 1..100 ms, in any order
    assert times is not None
    assert (times.cars, times.p50_ms, times.p95_ms, times.max_ms) == (100, 50, 95, 100)
    one = apply_times([7])
    assert one is not None
    assert (one.p50_ms, one.p95_ms, one.max_ms) == (7, 7, 7)
    assert apply_times([]) is None


def test_the_summary_counts_groups_times_and_failure_reasons() -> None:
    cars = [
        car(1, 0, RolloutState.SUCCEEDED, notified_at=1_000, finished_at=2_000),
        car(2, 0, RolloutState.SUCCEEDED, notified_at=1_000, finished_at=5_000),
        car(3, 1, RolloutState.SUCCEEDED),  # no times: not in the percentiles
        car(4, 1, RolloutState.FAILED, reason="flash-error: slot b", notified_at=1, finished_at=9),
        car(5, 1, RolloutState.FAILED, reason="flash-error: slot a"),
        car(6, 1, RolloutState.REJECTED, reason="wrong-target: the image is for fl-suv"),
        car(7, 1, RolloutState.TIMED_OUT),
        car(8, 1, RolloutState.CANCELLED, reason="aborted"),
        car(9, 1, RolloutState.QUEUED),
    ]
    record = Campaign(
        "c-1", SPEC, "ada", 1, CampaignState.RUNNING, ts=1,
        groups=[GroupProgress(0, 2), GroupProgress(1, 7), GroupProgress(2, 30)],
    )  # fmt: skip
    summary = summarize(record, cars)
    assert summary.vehicles == 9
    assert summary.counts["succeeded"] == 3
    assert summary.counts["installing"] == 0  # every state is a key
    assert [g.index for g in summary.groups] == [0, 1, 2]
    assert [g.vehicles for g in summary.groups] == [2, 7, 0]
    assert summary.groups[1].counts["failed"] == 2
    assert summary.apply_time is not None
    assert (summary.apply_time.cars, summary.apply_time.max_ms) == (2, 4_000)
    assert summary.apply_time.p50_ms == 1_000
    # cancelled is no failure; the reason's code, not each car's detail
    assert summary.failures == {"flash-error": 2, "wrong-target": 1, "timed-out": 1}
    assert next(iter(summary.failures)) == "flash-error"  # the most common first
    assert failure_reason(car(1, 0, RolloutState.FAILED, reason=": odd")) == "failed"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(stack={"state_dir": tmp_path})


@pytest.fixture
def kafka(settings: Settings) -> MemoryKafka:
    memory = MemoryKafka()
    memory.create(*settings.topic_map().names())
    return memory


@pytest.fixture
def view(settings: Settings, kafka: MemoryKafka) -> Iterator[CampaignReadModel]:
    model = CampaignReadModel(settings, logging.getLogger("test"), kafka.source())
    model.start()
    assert model.ready.wait(5)
    yield model
    model.stop()


def until(check: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.01)
    raise AssertionError("not within time")


def test_records_in_tombstones_out_and_garbage_skipped(
    settings: Settings, kafka: MemoryKafka, view: CampaignReadModel
) -> None:
    topics = settings.topic_map()
    campaigns, vehicles = topics[KafkaTopic.CAMPAIGNS], topics[KafkaTopic.CAMPAIGN_VEHICLES]
    kafka.append(campaigns, encode(campaign("c-1", created_at=5)), b"c-1")
    kafka.append(campaigns, encode(campaign("c-2", created_at=9)), b"c-2")
    kafka.append(campaigns, b"{not json", b"c-3")
    kafka.append(campaigns, encode(campaign("c-4")), b"c-other")  # its key names another
    for n, state in enumerate((RolloutState.SUCCEEDED, RolloutState.FAILED, RolloutState.QUEUED)):
        record = car(n, n % 2, state)
        kafka.append(vehicles, encode(record), record.key.encode())
    kafka.append(vehicles, encode(car(7, 0, RolloutState.QUEUED)), b"no-slash")
    until(lambda: len(view.vehicles_of("c-1")) == 3 and len(view.all()) == 2)
    assert [c.campaign_id for c in view.all()] == ["c-2", "c-1"]  # the newest first
    assert view.campaign("c-3") is None
    assert view.campaign("c-4") is None
    until(lambda: sum(view.skipped.counts.values()) == 3)
    assert [c.vin for c in view.vehicles_of("c-1", group=0)] == [vin(0), vin(2)]
    assert [c.vin for c in view.vehicles_of("c-1", state=RolloutState.FAILED)] == [vin(1)]
    assert view.summary("c-1").counts["succeeded"] == 1
    kafka.append(vehicles, None, car(1, 1, RolloutState.FAILED).key.encode())
    kafka.append(campaigns, None, b"c-2")
    until(lambda: view.campaign("c-2") is None and len(view.vehicles_of("c-1")) == 2)
    assert [c.campaign_id for c in view.all()] == ["c-1"]


def test_a_campaign_asked_for_shows_until_the_orchestrators_record_replaces_it(
    settings: Settings, kafka: MemoryKafka, view: CampaignReadModel
) -> None:
    asked = campaign("c-9")
    view.asked(asked)
    assert view.campaign("c-9") == asked
    recorded = Campaign("c-9", SPEC, "ada", 1, CampaignState.SCHEDULED, ts=2, approved_by="grace")
    kafka.append(settings.topic_map()[KafkaTopic.CAMPAIGNS], encode(recorded), b"c-9")
    until(lambda: view.campaign("c-9") == recorded)
    view.asked(asked)  # a late placeholder never hides the orchestrator's record
    assert view.campaign("c-9") == recorded
