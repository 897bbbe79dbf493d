"""When a campaign moves on (pure): a group's errors pause it, its successes open the next
group, the last group's end finishes it. hawkBit's success and error conditions, with AWS IoT
Jobs' minimum of cars that must have ended before an error share counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import msgspec

from fleetlink.contracts.campaigns import Campaign, CampaignVehicle, GroupProgress, RolloutState

Counts = dict[int, Counter[str]]  # group index -> RolloutState value -> cars

Move = Literal["pause-errors", "abort", "next-group", "pause-done", "finish"]


@dataclass(frozen=True)
class Verdict:
    move: Move
    why: str | None = None


def queued_cars(
    campaign: Campaign, groups: list[list[str]], firmware: dict[str, str | None], now: int
) -> list[CampaignVehicle]:
    """Each targeted car's record at the start: queued in its group, its version as known."""
    return [
        CampaignVehicle(
            campaign_id=campaign.campaign_id,
            vin=vin,
            group=index,
            state=RolloutState.QUEUED,
            desired=campaign.spec.version,
            ts=now,
            reported=firmware.get(vin),
        )
        for index, vins in enumerate(groups)
        for vin in vins
    ]


def settled(
    campaign: Campaign | None,
    vehicle: CampaignVehicle,
    state: RolloutState,
    reason: str | None,
    now: int,
) -> dict[str, object]:
    """A car's new state and reason: queued again after a failure or a timeout while the
    campaign's ``retries`` allow and it has not ended, else ``state`` (ended: when)."""
    retries = campaign.spec.retries if campaign is not None else 0
    retry = state in (RolloutState.FAILED, RolloutState.TIMED_OUT) and vehicle.attempts <= retries
    if retry and campaign is not None and not campaign.state.ended:
        return {"state": RolloutState.QUEUED, "reason": f"{state}: {reason}; retrying"[:256]}
    changes: dict[str, object] = {"state": state, "reason": reason[:256] if reason else None}
    if state.ended:
        changes["finished_at"] = now
    return changes


def counted(groups: list[GroupProgress], counts: Counts) -> list[GroupProgress]:
    """The groups with their cars counted by state."""
    return [
        msgspec.structs.replace(g, counts=dict(sorted(counts.get(g.index, Counter()).items())))
        for g in groups
    ]


def counts_of(states: list[tuple[int, RolloutState]]) -> Counts:
    counts: Counts = {}
    for group, state in states:
        counts.setdefault(group, Counter())[state] += 1
    return counts


def _ended(tally: Counter[str]) -> int:
    return sum(n for state, n in tally.items() if RolloutState(state).ended)


def verdict(campaign: Campaign, counts: Counts) -> Verdict | None:
    """What a running campaign does next, or None while it waits for its cars."""
    spec = campaign.spec
    for group in campaign.groups[: campaign.group + 1]:
        if group.errors_accepted:
            continue
        tally = counts.get(group.index, Counter())
        ended = _ended(tally)
        errors = sum(n for state, n in tally.items() if RolloutState(state).error)
        if errors and ended >= min(spec.min_executed, group.size):
            share = 100 * errors / ended
            if share >= spec.error_threshold_pct:
                why = (
                    f"group {group.index + 1}: {errors} of {ended} cars that ended failed"
                    f" ({share:.0f}% >= {spec.error_threshold_pct:g}%)"
                )
                return Verdict("abort" if spec.on_error == "abort" else "pause-errors", why)
    current = campaign.groups[campaign.group]
    tally = counts.get(current.index, Counter())
    if campaign.group == len(campaign.groups) - 1:
        if all(_ended(counts.get(g.index, Counter())) == g.size for g in campaign.groups):
            done = sum(c.get(RolloutState.SUCCEEDED, 0) for c in counts.values())
            return Verdict(
                "finish", f"{done} of {sum(g.size for g in campaign.groups)} cars updated"
            )
        return None
    if 100 * tally.get(RolloutState.SUCCEEDED, 0) >= spec.success_threshold_pct * current.size:
        if spec.on_success == "next":
            return Verdict("next-group")
        return Verdict("pause-done", f"group {current.index + 1} done: waiting for next-group")
    if _ended(tally) == current.size:
        why = f"group {current.index + 1} ended below its success threshold"
        return Verdict("pause-errors", why)
    return None
