"""A campaign's record changes and the rollout's outputs (pure): what the rules decide.

The orchestrator's shell writes ``Outcome.campaigns`` and ``.vehicles`` and sends the orders;
the functions below make the new campaign records (each one logs why in the history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeVar

import msgspec

from fleetlink.contracts.campaigns import (
    HISTORY_KEPT,
    Campaign,
    CampaignAction,
    CampaignState,
    CampaignVehicle,
    ControlCampaign,
    HistoryEntry,
    RolloutState,
    SoftwareStep,
)
from fleetlink.contracts.models import CommandState

ORCHESTRATOR = "fleetlink-campaigns"  # who acts in a campaign's history when no human did

IN_FLIGHT = frozenset(
    {
        RolloutState.NOTIFIED,
        RolloutState.DOWNLOADING,
        RolloutState.DOWNLOADED,
        RolloutState.INSTALLING,
    }
)
STEP_STATE = {
    SoftwareStep.DOWNLOADING: RolloutState.DOWNLOADING,
    SoftwareStep.DOWNLOADED: RolloutState.DOWNLOADED,
    SoftwareStep.INSTALLING: RolloutState.INSTALLING,
    SoftwareStep.SUCCEEDED: RolloutState.SUCCEEDED,
    SoftwareStep.FAILED: RolloutState.FAILED,
    SoftwareStep.REJECTED: RolloutState.REJECTED,
    SoftwareStep.CANCELLED: RolloutState.CANCELLED,
}
COMMAND_STATE = {
    CommandState.REJECTED: RolloutState.REJECTED,
    CommandState.FAILED: RolloutState.FAILED,
    CommandState.EXPIRED: RolloutState.TIMED_OUT,
    CommandState.CANCELLED: RolloutState.CANCELLED,
}


@dataclass(frozen=True)
class Order:
    """A ``software.update`` to send (signed by the shell, which holds the keys)."""

    campaign_id: str
    vin: str
    command_id: str
    group: int
    expires_at: int


@dataclass(frozen=True)
class Withdrawal:
    """An update command to withdraw, and (``tell_car``) a ``software.cancel`` to the car."""

    campaign_id: str
    vin: str
    command_id: str
    tell_car: bool


@dataclass
class Outcome:
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    vehicles: list[CampaignVehicle] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    withdrawals: list[Withdrawal] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.campaigns or self.vehicles or self.orders or self.withdrawals)


S = TypeVar("S", bound=msgspec.Struct)


def replace(record: S, **changes: object) -> S:
    return msgspec.structs.replace(record, **changes)


def seen(campaign: Campaign, request: ControlCampaign) -> bool:
    """The request is in the history already (read again after a restart)."""
    return any(
        e.ts == request.ts and e.by == request.by and e.what.endswith(str(request.action))
        for e in campaign.history
    )


# which states each action fits (the API checks the same before it writes a request)
ALLOWED: Final[dict[CampaignAction, frozenset[CampaignState]]] = {
    CampaignAction.APPROVE: frozenset({CampaignState.AWAITING_APPROVAL}),
    CampaignAction.PAUSE: frozenset({CampaignState.RUNNING, CampaignState.SCHEDULED}),
    CampaignAction.RESUME: frozenset({CampaignState.PAUSED}),
    CampaignAction.NEXT_GROUP: frozenset({CampaignState.RUNNING, CampaignState.PAUSED}),
    CampaignAction.ABORT: frozenset(s for s in CampaignState if not s.ended),
}


def refusal_of(campaign: Campaign, request: ControlCampaign) -> str | None:
    action = request.action
    if campaign.state not in ALLOWED[action]:
        return f"cannot {action} a campaign that is {campaign.state}"
    if action is CampaignAction.APPROVE and request.by == campaign.created_by:
        return "a second fleet admin must approve (four eyes)"
    if action is CampaignAction.NEXT_GROUP and campaign.started_at is None:
        return "the campaign has not started"
    if action is CampaignAction.NEXT_GROUP and campaign.group >= len(campaign.groups) - 1:
        return "the last group has started already"
    return None


def with_entry(
    campaign: Campaign, ts: int, what: str, by: str, note: str | None = None
) -> Campaign:
    entry = HistoryEntry(ts, what[:32], by, note[:256] if note else None)
    history = [*campaign.history, entry][-HISTORY_KEPT:]
    logged: Campaign = msgspec.structs.replace(campaign, history=history, ts=max(ts, campaign.ts))
    return logged


def ended_as(campaign: Campaign, state: CampaignState, now: int, why: str) -> Campaign:
    ended = msgspec.structs.replace(
        campaign, state=state, ended_at=now, reason=why[:256], paused_for=None
    )
    return with_entry(ended, now, str(state), ORCHESTRATOR, why)


def running(campaign: Campaign) -> Campaign:
    return replace(campaign, state=CampaignState.RUNNING, paused_for=None, reason=None)


def accepted(campaign: Campaign) -> Campaign:
    """Running again, the errors of every group started so far accepted."""
    groups = [
        replace(g, errors_accepted=True) if g.index <= campaign.group else g
        for g in campaign.groups
    ]
    return replace(running(campaign), groups=groups)
