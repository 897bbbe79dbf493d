"""The rollout's rules without Kafka: groups, thresholds, pause, resume, abort, rate, time."""

from __future__ import annotations

import msgspec
import pytest

from fleetlink.campaigns.rollout import RolloutBook
from fleetlink.campaigns.targets import Car, group_sizes
from fleetlink.contracts.campaigns import (
    CampaignAction,
    CampaignSpec,
    CampaignState,
    ControlCampaign,
    CreateCampaign,
    ImageMetadata,
    RolloutState,
    SoftwareReport,
    SoftwareStep,
)
from fleetlink.contracts.models import CommandState

T0 = 1_800_000_000_000
IMAGE = ImageMetadata(
    name="fl-sedan-os", version="2026.48", target="fl-sedan", length=10, sha256="0" * 64,
    released_at=T0,
)  # fmt: skip


def vin(n: int) -> str:
    return f"TESTCAR{n:010d}"


def book_with(cars: int, *, online: bool = True) -> RolloutBook:
    book = RolloutBook(lambda name, version: IMAGE if version == IMAGE.version else None)
    for n in range(cars):
        book.cars[vin(n)] = Car(vin(n), "fl-sedan", "2026.40", online)
    return book


def control(action: CampaignAction, by: str = "bob", ts: int = T0 + 1) -> ControlCampaign:
    return ControlCampaign("c1", action, by, ts)


def started(book: RolloutBook, **spec: object) -> None:
    defaults: dict[str, object] = {"name": "n", "image": "fl-sedan-os", "version": "2026.48"}
    book.request(
        CreateCampaign("c1", msgspec.convert(defaults | spec, CampaignSpec), "alice", T0), T0
    )
    book.request(control(CampaignAction.APPROVE), T0)
    book.tick(T0)


def report(book: RolloutBook, vins: list[str], step: SoftwareStep, now: int) -> None:
    for car in vins:
        book.software_state(car, SoftwareReport(step, "2026.40", "c1", "2026.48"), now)


def in_group(book: RolloutBook, group: int) -> list[str]:
    return sorted(v.vin for v in book.vehicles["c1"].values() if v.group == group)


def states(book: RolloutBook, group: int) -> set[RolloutState]:
    return {v.state for v in book.vehicles["c1"].values() if v.group == group}


def test_group_sizes_follow_the_percents_and_the_rest_forms_a_last_group() -> None:
    assert group_sizes(1000, [1, 10, 50]) == [10, 100, 500, 390]
    assert group_sizes(20, [1, 10, 50]) == [1, 2, 10, 7]  # a canary of at least one car
    assert group_sizes(2, [1, 10, 50]) == [1, 1]
    assert group_sizes(0, [1, 10, 50]) == []


def test_the_creator_cannot_approve_and_nothing_runs_before_a_second_admin_does() -> None:
    book = book_with(10)
    spec = CampaignSpec(name="n", image="fl-sedan-os", version="2026.48")
    book.request(CreateCampaign("c1", spec, "alice", T0), T0)
    book.request(control(CampaignAction.APPROVE, by="alice"), T0)
    assert book.tick(T0 + 10).orders == []
    assert book.campaigns["c1"].state is CampaignState.AWAITING_APPROVAL
    assert book.campaigns["c1"].history[-1].what == "refused-approve"
    book.request(control(CampaignAction.APPROVE, by="bob", ts=T0 + 2), T0)
    assert book.tick(T0 + 20).orders
    assert book.campaigns["c1"].state is CampaignState.RUNNING


def test_only_the_first_group_is_ordered_and_the_next_opens_on_success() -> None:
    book = book_with(100)
    started(book, rate_per_min=100_000)
    sizes = [g.size for g in book.campaigns["c1"].groups]
    assert sizes == [1, 10, 50, 39]
    ordered = {v.vin for v in book.vehicles["c1"].values() if v.state is RolloutState.NOTIFIED}
    assert ordered == set(in_group(book, 0))
    report(book, in_group(book, 0), SoftwareStep.SUCCEEDED, T0 + 1000)
    out = book.tick(T0 + 1000)
    assert book.campaigns["c1"].group == 1
    out = book.tick(T0 + 2000)
    assert {order.vin for order in out.orders} == set(in_group(book, 1))


def test_errors_in_group_two_pause_before_group_three_gets_anything_and_resume_goes_on() -> None:
    book = book_with(100)
    started(book, rate_per_min=100_000, error_threshold_pct=20, min_executed=5)
    report(book, in_group(book, 0), SoftwareStep.SUCCEEDED, T0 + 1000)
    book.tick(T0 + 1000)
    book.tick(T0 + 2000)
    group2 = in_group(book, 1)
    report(book, group2[:3], SoftwareStep.FAILED, T0 + 3000)
    report(book, group2[3:5], SoftwareStep.SUCCEEDED, T0 + 3000)
    book.tick(T0 + 3000)
    campaign = book.campaigns["c1"]
    assert campaign.state is CampaignState.PAUSED
    assert campaign.paused_for == "errors"
    assert "3 of 5" in (campaign.reason or "")
    assert states(book, 2) == {RolloutState.QUEUED}
    assert book.tick(T0 + 60_000).orders == []  # paused: nothing new goes out
    book.request(control(CampaignAction.RESUME, ts=T0 + 61_000), T0 + 61_000)
    out = book.tick(T0 + 62_000)
    assert book.campaigns["c1"].group == 2
    assert {order.vin for order in out.orders} >= set(in_group(book, 2))


def test_abort_cancels_the_queued_and_withdraws_what_cars_have_not_installed() -> None:
    book = book_with(100)
    started(book, rate_per_min=100_000)
    report(book, in_group(book, 0), SoftwareStep.SUCCEEDED, T0 + 1000)
    book.tick(T0 + 1000)
    book.tick(T0 + 2000)
    out = book.request(control(CampaignAction.ABORT, ts=T0 + 3000), T0 + 3000)
    assert book.campaigns["c1"].state is CampaignState.ABORTED
    assert {w.vin for w in out.withdrawals} == set(in_group(book, 1))
    assert all(w.tell_car for w in out.withdrawals)
    assert states(book, 2) == {RolloutState.CANCELLED}
    assert book.tick(T0 + 60_000).orders == []


def test_orders_keep_to_the_rate_and_wait_for_offline_cars() -> None:
    book = book_with(30, online=False)
    book.cars[vin(0)].online = True
    started(book, groups=[100.0], rate_per_min=60)
    assert [v.vin for v in book.vehicles["c1"].values() if v.state is RolloutState.NOTIFIED] == [
        vin(0)
    ]
    for car in book.cars.values():
        car.online = True
    sent = [len(book.tick(T0 + s * 1000).orders) for s in range(1, 11)]
    assert sum(sent) == 10  # one a second
    assert max(sent) == 1


def test_a_car_that_never_ends_times_out_and_a_failure_is_retried_when_allowed() -> None:
    book = book_with(2)
    started(book, groups=[100.0], retries=1, vehicle_timeout_s=60, rate_per_min=100_000)
    first, second = sorted(book.vehicles["c1"])
    report(book, [first], SoftwareStep.FAILED, T0 + 1000)
    assert book.vehicles["c1"][first].state is RolloutState.QUEUED  # one retry left
    out = book.tick(T0 + 2000)
    assert [o.command_id for o in out.orders] == [f"ota-c1-{first}-2"]
    out = book.tick(T0 + 61_000)
    assert [w.command_id for w in out.withdrawals] == [f"ota-c1-{second}-1"]  # timed out
    assert [o.command_id for o in out.orders] == [f"ota-c1-{second}-2"]  # and tried again
    report(book, [first], SoftwareStep.FAILED, T0 + 62_000)
    assert book.vehicles["c1"][first].state is RolloutState.FAILED  # no retry left


def test_a_command_the_car_rejected_or_that_expired_ends_the_car() -> None:
    book = book_with(2)
    started(book, groups=[100.0], rate_per_min=100_000)
    one, two = sorted(book.vehicles["c1"].values(), key=lambda v: v.vin)
    assert one.command_id is not None
    assert two.command_id is not None
    book.command_status(one.command_id, one.vin, CommandState.REJECTED, "bad-signature", T0 + 1)
    book.command_status(two.command_id, two.vin, CommandState.EXPIRED, None, T0 + 1)
    assert book.vehicles["c1"][one.vin].state is RolloutState.REJECTED
    assert book.vehicles["c1"][two.vin].state is RolloutState.TIMED_OUT


def test_the_campaign_finishes_when_every_car_ended_and_when_its_window_closes() -> None:
    book = book_with(3)
    started(book, groups=[100.0], rate_per_min=100_000)
    report(book, sorted(book.vehicles["c1"]), SoftwareStep.SUCCEEDED, T0 + 1000)
    book.tick(T0 + 1000)
    assert book.campaigns["c1"].state is CampaignState.FINISHED
    assert book.campaigns["c1"].reason == "3 of 3 cars updated"
    late = book_with(3, online=False)
    started(late, groups=[100.0], window_s=60)
    late.tick(T0 + 61_000)
    assert late.campaigns["c1"].state is CampaignState.FINISHED
    assert {v.state for v in late.vehicles["c1"].values()} == {RolloutState.TIMED_OUT}


@pytest.mark.parametrize("action", list(CampaignAction))
def test_a_request_read_twice_is_applied_once(action: CampaignAction) -> None:
    book = book_with(5)
    started(book, rate_per_min=100_000)
    before = len(book.campaigns["c1"].history)
    book.request(control(action, ts=T0 + 5), T0 + 5)
    after_once = book.campaigns["c1"]
    book.request(control(action, ts=T0 + 5), T0 + 6)
    assert book.campaigns["c1"] == after_once
    assert len(after_once.history) >= before


def test_only_cars_of_the_target_model_on_an_older_version_in_the_segment_are_chosen() -> None:
    book = book_with(4)
    book.cars[vin(1)].model = "fl-suv"
    book.cars[vin(2)].firmware = "2026.48"
    book.cars["OTHERCAR000000001"] = Car("OTHERCAR000000001", "fl-sedan", "2026.40", True)
    started(book, groups=[100.0], segment={"vin_prefix": "TESTCAR"})
    assert sorted(book.vehicles["c1"]) == [vin(0), vin(3)]
