"""The API's read model of OTA campaigns: ``fleet.campaigns`` and ``fleet.campaign-vehicles``
followed from their beginning (every API instance holds the whole picture). The orchestrator
stays their only writer; a campaign the API just asked for is visible here at once, until the
orchestrator's own record comes.

Both topics are compacted: a tombstone (a record without a value) removes what its key named.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Final

import msgspec

from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.contracts.campaigns import Campaign, CampaignVehicle, RolloutState
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, decode_text
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings

_STATES: Final = tuple(RolloutState)


class ApplyTimes(msgspec.Struct, frozen=True):
    """How long cars that succeeded took from their order to the end, in milliseconds."""

    cars: int
    p50_ms: int
    p95_ms: int
    max_ms: int


class GroupSummary(msgspec.Struct, frozen=True):
    index: int
    vehicles: int
    counts: dict[str, int]  # every RolloutState value -> cars (zeros included: stable columns)


class CampaignSummary(msgspec.Struct, frozen=True):
    """Where a campaign's cars are, from their own records (not the campaign's last tally)."""

    vehicles: int
    counts: dict[str, int]
    groups: list[GroupSummary]
    apply_time: ApplyTimes | None  # None until a car succeeded
    failures: dict[str, int]  # reason code -> cars failed, rejected or timed out


def _percentile(ordered: list[int], share: float) -> int:
    """Nearest rank: a value some car really took, never an interpolation between two."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def apply_times(durations: list[int]) -> ApplyTimes | None:
    if not durations:
        return None
    ordered = sorted(durations)
    return ApplyTimes(
        len(ordered), _percentile(ordered, 0.5), _percentile(ordered, 0.95), ordered[-1]
    )


def failure_reason(vehicle: CampaignVehicle) -> str:
    """The reason's code (``rollback`` of ``rollback: 1.2 is older than ...``): the detail
    names each car's own versions and would split one cause into many rows."""
    if not vehicle.reason:
        return vehicle.state.value
    return vehicle.reason.split(":", 1)[0].strip() or vehicle.state.value


def _zeros() -> dict[str, int]:
    return {state.value: 0 for state in _STATES}


def summarize(campaign: Campaign | None, vehicles: list[CampaignVehicle]) -> CampaignSummary:
    counts = _zeros()
    per_group: dict[int, dict[str, int]] = {}
    if campaign is not None:  # groups not started yet are shown, with no cars in them yet
        for group in campaign.groups:
            per_group.setdefault(group.index, _zeros())
    durations: list[int] = []
    failures: Counter[str] = Counter()
    for vehicle in vehicles:
        counts[vehicle.state.value] += 1
        per_group.setdefault(vehicle.group, _zeros())[vehicle.state.value] += 1
        apply_ms = vehicle.apply_ms
        if vehicle.state is RolloutState.SUCCEEDED and apply_ms is not None:
            durations.append(apply_ms)
        if vehicle.state.error:
            failures[failure_reason(vehicle)] += 1
    groups = [
        GroupSummary(index, sum(group_counts.values()), group_counts)
        for index, group_counts in sorted(per_group.items())
    ]
    return CampaignSummary(
        vehicles=len(vehicles),
        counts=counts,
        groups=groups,
        apply_time=apply_times(durations),
        failures=dict(failures.most_common()),
    )


class CampaignReadModel(FollowedModel[Campaign]):
    def __init__(self, settings: Settings, log: logging.Logger, source: RecordSource) -> None:
        topics = settings.topic_map()
        self._campaigns_topic = topics[KafkaTopic.CAMPAIGNS]
        super().__init__(
            source,
            [self._campaigns_topic, topics[KafkaTopic.CAMPAIGN_VEHICLES]],
            log,
            name="campaigns-view",
        )
        self.campaigns: dict[str, Campaign] = {}
        self.vehicles: dict[str, dict[str, CampaignVehicle]] = {}  # campaign id -> vin -> car

    # queries ----------------------------------------------------------------------------

    def campaign(self, campaign_id: str) -> Campaign | None:
        with self._lock:
            return self.campaigns.get(campaign_id)

    def all(self) -> list[Campaign]:
        """Every campaign, the newest first."""
        with self._lock:
            found = list(self.campaigns.values())
        return sorted(found, key=lambda c: (c.created_at, c.campaign_id), reverse=True)

    def vehicles_of(
        self,
        campaign_id: str,
        *,
        state: RolloutState | None = None,
        group: int | None = None,
    ) -> list[CampaignVehicle]:
        """The campaign's cars by group, then VIN; only those in ``state`` and ``group``."""
        with self._lock:
            cars = list(self.vehicles.get(campaign_id, {}).values())
        chosen = [
            car
            for car in cars
            if (state is None or car.state is state) and (group is None or car.group == group)
        ]
        return sorted(chosen, key=lambda car: (car.group, car.vin))

    def summary(self, campaign_id: str) -> CampaignSummary:
        with self._lock:
            campaign = self.campaigns.get(campaign_id)
            cars = list(self.vehicles.get(campaign_id, {}).values())
        return summarize(campaign, cars)

    # what the API itself asked -----------------------------------------------------------

    def asked(self, campaign: Campaign) -> None:
        """A campaign the API just asked for: shown until the orchestrator's record comes."""
        with self._lock:
            self.campaigns.setdefault(campaign.campaign_id, campaign)

    # reading ----------------------------------------------------------------------------

    def _take(self, records: list[SourceRecord]) -> list[Campaign]:
        news: list[Campaign] = []
        for message in records:
            try:
                if message.topic() == self._campaigns_topic:
                    changed = self._take_campaign(message)
                    if changed is not None:
                        news.append(changed)
                else:
                    self._take_vehicle(message)
            except UndecodableError as unreadable:
                self.skipped.skip(message, unreadable)
        return news

    def _take_campaign(self, message: SourceRecord) -> Campaign | None:
        campaign_id = decode_text(message.key(), "key")
        if message.value() is None:
            self.campaigns.pop(campaign_id, None)
            return None
        campaign = decode(Campaign, message.value())
        if campaign.campaign_id != campaign_id:
            raise UndecodableError(DlqReason.INVALID_KEY, f"key {campaign_id!r} names another")
        self.campaigns[campaign_id] = campaign
        return campaign

    def _take_vehicle(self, message: SourceRecord) -> None:
        key = decode_text(message.key(), "key")
        campaign_id, slash, vin = key.partition("/")
        if not slash or not campaign_id or not vin:
            raise UndecodableError(DlqReason.INVALID_KEY, f"{key!r} is no {{campaign}}/{{vin}}")
        if message.value() is None:
            cars = self.vehicles.get(campaign_id)
            if cars is not None:
                cars.pop(vin, None)
                if not cars:
                    del self.vehicles[campaign_id]
            return
        vehicle = decode(CampaignVehicle, message.value())
        if vehicle.key != key:
            raise UndecodableError(DlqReason.INVALID_KEY, f"key {key!r} names another car")
        self.vehicles.setdefault(campaign_id, {})[vin] = vehicle
