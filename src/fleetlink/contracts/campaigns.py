"""OTA campaigns: what an operator asks for, the campaign's and each car's progress, and the
signed metadata a car checks before it installs anything.

Records:

- ``fleet.campaign-requests`` (key campaign id, a log): what fleet admins asked, as received
  (create, approve, pause, resume, abort, next group);
- ``fleet.campaigns`` (key campaign id, compacted): each campaign's definition and state, written
  by the campaign orchestrator only;
- ``fleet.campaign-vehicles`` (key ``{campaign}/{vin}``, compacted): desired vs reported per car,
  written by the orchestrator only.

The security model is Uptane's, simplified: an **image repository** key (kept offline by the
release engineers) signs each image's metadata (name, version, hardware target, length, SHA-256);
a **director** key (online, in the orchestrator) signs a per-car order naming the same image.
A car installs only when both signatures hold, both name the same bytes, the order is for this
car and still valid, the target is its model and the version is newer than the one it runs.
Neither key is the command key: whoever holds the command key alone cannot install software,
and a leaked director key alone cannot install an image the repository never released.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from fleetlink.contracts.models import EpochMillis, Vin
from fleetlink.contracts.purchases import FIRMWARE

IMAGE_NAME: Final = r"^[a-z0-9][a-z0-9._-]{0,63}$"
CAMPAIGN_ID: Final = r"^[a-z0-9][a-z0-9-]{0,47}$"

ImageName = Annotated[str, Meta(pattern=IMAGE_NAME)]
Version = Annotated[str, Meta(pattern=FIRMWARE)]
CampaignId = Annotated[str, Meta(pattern=CAMPAIGN_ID)]
Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
Model = Annotated[str, Meta(min_length=1, max_length=64)]
Actor = Annotated[str, Meta(min_length=1, max_length=128)]
Percent = Annotated[float, Meta(ge=0, le=100)]

DEFAULT_GROUPS: Final = (1.0, 10.0, 50.0)  # then the rest: hawkBit's and Mender's canary waves
HISTORY_KEPT: Final = 50  # actions a campaign record remembers (the requests topic has all)


# signed metadata ----------------------------------------------------------------------------


class ImageMetadata(msgspec.Struct, frozen=True, omit_defaults=True):
    """One released image, signed by the image repository's key (``kid``/``sig``)."""

    name: ImageName
    version: Version
    target: Model  # the hardware model the image is built for
    length: Annotated[int, Meta(ge=1)]
    sha256: Sha256
    released_at: EpochMillis
    kid: Annotated[str, Meta(max_length=64)] | None = None
    sig: Annotated[str, Meta(max_length=128)] | None = None


class DirectorOrder(msgspec.Struct, frozen=True, omit_defaults=True):
    """The director's word that this car is to install this image, signed with its online key."""

    vin: Vin
    campaign_id: CampaignId
    name: ImageName
    version: Version
    length: Annotated[int, Meta(ge=1)]
    sha256: Sha256
    expires_at: EpochMillis
    kid: Annotated[str, Meta(max_length=64)] | None = None
    sig: Annotated[str, Meta(max_length=128)] | None = None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# what a campaign asks for -------------------------------------------------------------------


class Region(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A box on the map: cars whose last known position lies inside."""

    south: Annotated[float, Meta(ge=-90, le=90)]
    west: Annotated[float, Meta(ge=-180, le=180)]
    north: Annotated[float, Meta(ge=-90, le=90)]
    east: Annotated[float, Meta(ge=-180, le=180)]

    def holds(self, latitude: float, longitude: float) -> bool:
        return self.south <= latitude <= self.north and self.west <= longitude <= self.east


class Segment(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Which cars a campaign is for; every condition given must hold (none: every car that
    runs an older version on the image's target model)."""

    models: list[Model] = []
    versions: list[Version] = []  # the versions cars run now
    region: Region | None = None
    vin_prefix: Annotated[str, Meta(pattern=r"^[A-HJ-NPR-Z0-9]{1,16}$")] | None = None


class CampaignSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/campaigns``: an image version for a segment of the fleet, rolled out in groups.

    ``groups``: each group's share of the targeted cars in percent, in order; the cars left
    over form a last group. A group starts when the one before reached
    ``success_threshold_pct`` succeeded (``on_success``: start it, or pause for a human); once
    ``min_executed`` cars of a group have ended, an error share at or above
    ``error_threshold_pct`` of them pauses the campaign (``on_error``) before the next group
    gets anything.
    """

    name: Annotated[str, Meta(min_length=1, max_length=128)]
    image: ImageName
    version: Version
    segment: Segment = Segment()
    groups: Annotated[list[Annotated[float, Meta(gt=0, le=100)]], Meta(max_length=20)] = (
        msgspec.field(default_factory=lambda: list(DEFAULT_GROUPS))
    )
    success_threshold_pct: Percent = 95.0
    error_threshold_pct: Percent = 10.0
    min_executed: Annotated[int, Meta(ge=1, le=100_000)] = 5
    on_success: Literal["next", "pause"] = "next"
    on_error: Literal["pause", "abort"] = "pause"
    rate_per_min: Annotated[int, Meta(ge=1, le=1_000_000)] = 1000  # orders sent per minute
    start_at: EpochMillis | None = None  # not before (approval still needed)
    retries: Annotated[int, Meta(ge=0, le=10)] = 0  # per car, after a failure
    vehicle_timeout_s: Annotated[int, Meta(ge=1, le=90 * 86_400)] = 86_400
    window_s: Annotated[int, Meta(ge=1, le=365 * 86_400)] = 14 * 86_400  # from the start


class CampaignAction(StrEnum):
    APPROVE = "approve"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    NEXT_GROUP = "next-group"


class CreateCampaign(msgspec.Struct, frozen=True, tag="create", omit_defaults=True):
    campaign_id: CampaignId
    spec: CampaignSpec
    by: Actor
    ts: EpochMillis


class ControlCampaign(msgspec.Struct, frozen=True, tag="control", omit_defaults=True):
    campaign_id: CampaignId
    action: CampaignAction
    by: Actor
    ts: EpochMillis
    note: Annotated[str, Meta(max_length=256)] | None = None


CampaignRequest = CreateCampaign | ControlCampaign


# what the orchestrator records --------------------------------------------------------------


class CampaignState(StrEnum):
    AWAITING_APPROVAL = "awaiting-approval"
    SCHEDULED = "scheduled"  # approved, waiting for ``start_at``
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    ABORTED = "aborted"

    @property
    def ended(self) -> bool:
        return self in (CampaignState.FINISHED, CampaignState.ABORTED)


class RolloutState(StrEnum):
    """One car in a campaign: AWS IoT Jobs' execution states, with the car's own steps."""

    QUEUED = "queued"  # in a group that has not started, or waiting for the rate limit
    NOTIFIED = "notified"  # the order is on its way to the car
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"  # verified, waits until the car is parked
    INSTALLING = "installing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"  # the car refused it (signature, rollback, target)
    TIMED_OUT = "timed-out"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in _ENDED

    @property
    def error(self) -> bool:
        return self in (RolloutState.FAILED, RolloutState.REJECTED, RolloutState.TIMED_OUT)


_ENDED: Final = frozenset(
    {
        RolloutState.SUCCEEDED,
        RolloutState.FAILED,
        RolloutState.REJECTED,
        RolloutState.TIMED_OUT,
        RolloutState.CANCELLED,
    }
)


class HistoryEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    """Something that happened to a campaign: who (a user, or the orchestrator) and why."""

    ts: EpochMillis
    what: Annotated[str, Meta(max_length=32)]
    by: Actor
    note: Annotated[str, Meta(max_length=256)] | None = None


class GroupProgress(msgspec.Struct, frozen=True, omit_defaults=True):
    index: int
    size: int
    started_at: EpochMillis | None = None
    counts: dict[str, int] = {}  # RolloutState value -> cars
    errors_accepted: bool = False  # resumed past its error threshold by a human


class Campaign(msgspec.Struct, frozen=True, omit_defaults=True):
    """``fleet.campaigns``: a campaign's definition, state and history."""

    campaign_id: CampaignId
    spec: CampaignSpec
    created_by: Actor
    created_at: EpochMillis
    state: CampaignState
    ts: EpochMillis
    approved_by: Actor | None = None
    started_at: EpochMillis | None = None
    ended_at: EpochMillis | None = None
    group: int = -1  # the last group started; -1 before the start
    groups: list[GroupProgress] = []
    reason: Annotated[str, Meta(max_length=256)] | None = None  # of the last pause or end
    # why it is paused: an operator asked, a group's errors, a group done (``on_success``)
    paused_for: Literal["operator", "errors", "group-done"] | None = None
    history: list[HistoryEntry] = []


class CampaignVehicle(msgspec.Struct, frozen=True, omit_defaults=True):
    """``fleet.campaign-vehicles``: what one car should run (``desired``) and what it reports."""

    campaign_id: CampaignId
    vin: Vin
    group: int
    state: RolloutState
    desired: Version
    ts: EpochMillis
    reported: Version | None = None  # the version the car said it runs
    attempts: int = 0
    command_id: str | None = None
    progress_pct: Annotated[int, Meta(ge=0, le=100)] | None = None
    reason: Annotated[str, Meta(max_length=256)] | None = None
    notified_at: EpochMillis | None = None
    finished_at: EpochMillis | None = None

    @property
    def key(self) -> str:
        return campaign_vehicle_key(self.campaign_id, self.vin)

    @property
    def apply_ms(self) -> int | None:
        """From the order to the end: how long the car took."""
        if self.notified_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.notified_at


def campaign_vehicle_key(campaign_id: str, vin: str) -> str:
    return f"{campaign_id}/{vin}"


def update_command_id(campaign_id: str, vin: str, attempt: int) -> str:
    """The order's command id: one per attempt, the same after an orchestrator crash."""
    return f"ota-{campaign_id}-{vin}-{attempt}"


# what the car reports -----------------------------------------------------------------------


class SoftwareStep(StrEnum):
    """``software-state`` events: the car's steps through an update."""

    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    INSTALLING = "installing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class SoftwareReport(msgspec.Struct, frozen=True, omit_defaults=True):
    """``data`` of a ``software-state`` event."""

    step: SoftwareStep
    installed: Version  # what the car runs now
    campaign_id: CampaignId | None = None
    version: Version | None = None  # the version the update brings
    progress_pct: Annotated[int, Meta(ge=0, le=100)] | None = None
    reason: Annotated[str, Meta(max_length=256)] | None = None
    slot: Literal["a", "b"] | None = None  # the slot the car booted from


class SoftwareUpdateParams(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``software.update``: the two signed documents and where the bytes are."""

    campaign_id: CampaignId
    image: ImageMetadata
    order: DirectorOrder
    url: Annotated[str, Meta(pattern=r"^https?://", max_length=512)]
    token: Annotated[str, Meta(min_length=1, max_length=2048)]  # lets this car read the bytes
    group: Annotated[int, Meta(ge=0)] | None = None  # for the simulator's failure injection


class SoftwareCancelParams(msgspec.Struct, forbid_unknown_fields=True):
    """``software.cancel``: do not install this campaign's image unless already installing."""

    campaign_id: CampaignId
