"""The rollout's rules (pure): each campaign's state and each car's, driven by the operators'
requests, the cars' ``software-state`` reports, the orders' command outcomes and the clock.

Every input may come twice (the orchestrator is at-least-once): a request already in the
campaign's history, a report that changes nothing and an order with the same command id are
no-ops. Outputs are the records to write and the orders to send; the orchestrator's shell
does the writing.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from fleetlink.campaigns.records import (
    COMMAND_STATE,
    IN_FLIGHT,
    ORCHESTRATOR,
    STEP_STATE,
    Order,
    Outcome,
    Withdrawal,
    accepted,
    ended_as,
    refusal_of,
    replace,
    running,
    seen,
    with_entry,
)
from fleetlink.campaigns.targets import Car, assign_groups
from fleetlink.campaigns.waves import Counts, counted, counts_of, queued_cars, settled, verdict
from fleetlink.contracts.campaigns import (
    Campaign,
    CampaignAction,
    CampaignRequest,
    CampaignState,
    CampaignVehicle,
    ControlCampaign,
    CreateCampaign,
    GroupProgress,
    HistoryEntry,
    ImageMetadata,
    RolloutState,
    SoftwareReport,
    update_command_id,
)
from fleetlink.contracts.models import CommandState

ImageLookup = Callable[[str, str], ImageMetadata | None]


class RolloutBook:
    def __init__(self, images: ImageLookup, *, progress_every_ms: int = 1000) -> None:
        self.campaigns: dict[str, Campaign] = {}
        self.vehicles: dict[str, dict[str, CampaignVehicle]] = {}
        self.cars: dict[str, Car] = {}
        self._images = images
        self._progress_every_ms = progress_every_ms
        self._budget: dict[str, float] = {}  # orders each campaign may send now (rate limit)
        self._last_tick: int | None = None

    # restore and inventory ----------------------------------------------------------------------

    def restore(self, campaign: Campaign) -> None:
        self.campaigns[campaign.campaign_id] = campaign

    def restore_vehicle(self, vehicle: CampaignVehicle) -> None:
        self.vehicles.setdefault(vehicle.campaign_id, {})[vehicle.vin] = vehicle

    def car(self, vin: str) -> Car:
        known = self.cars.get(vin)
        if known is None:
            known = self.cars[vin] = Car(vin)
        return known

    # operators ----------------------------------------------------------------------------------

    def request(self, request: CampaignRequest, now: int) -> Outcome:
        out = Outcome()
        known = self.campaigns.get(request.campaign_id)
        if isinstance(request, CreateCampaign):
            if known is None:
                entry = HistoryEntry(request.ts, "created", request.by)
                self._put(
                    out,
                    Campaign(
                        campaign_id=request.campaign_id,
                        spec=request.spec,
                        created_by=request.by,
                        created_at=request.ts,
                        state=CampaignState.AWAITING_APPROVAL,
                        ts=now,
                        history=[entry],
                    ),
                )
            return out
        if known is None or seen(known, request):
            return out
        refusal = refusal_of(known, request)
        if refusal is not None:
            self._put(
                out, with_entry(known, request.ts, f"refused-{request.action}", request.by, refusal)
            )
            return out
        self._control(out, known, request, now)
        return out

    def _control(
        self, out: Outcome, campaign: Campaign, request: ControlCampaign, now: int
    ) -> None:
        action, by = request.action, request.by
        logged = with_entry(campaign, request.ts, str(action), by, request.note)
        if action is CampaignAction.APPROVE:
            self._put(out, replace(logged, state=CampaignState.SCHEDULED, approved_by=by))
        elif action is CampaignAction.PAUSE:
            note = request.note or f"paused by {by}"
            changes = {"state": CampaignState.PAUSED, "paused_for": "operator", "reason": note}
            self._put(out, replace(logged, **changes))
        elif action is CampaignAction.ABORT:
            self._abort(out, logged, now, request.note or f"aborted by {by}")
        elif action is CampaignAction.RESUME:
            self._resume(out, logged, now)
        else:  # a human opens the next group, whatever the thresholds say
            self._put(out, accepted(logged))
            self._next_group(out, self.campaigns[campaign.campaign_id], now, by)

    def _resume(self, out: Outcome, campaign: Campaign, now: int) -> None:
        if campaign.started_at is None:
            self._put(out, replace(campaign, state=CampaignState.SCHEDULED, paused_for=None))
            return
        why = campaign.paused_for
        # after a pause for errors a human looked at the group's failures and goes on anyway
        self._put(out, accepted(campaign) if why == "errors" else running(campaign))
        if why in ("errors", "group-done"):
            self._next_group(
                out, self.campaigns[campaign.campaign_id], now, campaign.history[-1].by
            )

    def _abort(self, out: Outcome, campaign: Campaign, now: int, reason: str) -> None:
        for vehicle in self.vehicles.get(campaign.campaign_id, {}).values():
            if vehicle.state is RolloutState.QUEUED:
                self._set(out, vehicle, now, state=RolloutState.CANCELLED, reason=reason[:256])
            elif vehicle.state in IN_FLIGHT and vehicle.command_id is not None:
                # the car decides: it drops the update unless it is installing already
                out.withdrawals.append(
                    Withdrawal(campaign.campaign_id, vehicle.vin, vehicle.command_id, True)
                )
        ended = replace(campaign, state=CampaignState.ABORTED, ended_at=now, reason=reason[:256])
        self._put(out, ended)

    # groups -------------------------------------------------------------------------------------

    def _start(self, out: Outcome, campaign: Campaign, now: int) -> None:
        spec = campaign.spec
        image = self._images(spec.image, spec.version)
        if image is None:
            why = f"image {spec.image} {spec.version} is not released"
            self._put(out, ended_as(campaign, CampaignState.ABORTED, now, why))
            return
        groups = assign_groups(campaign.campaign_id, list(self.cars.values()), spec, image.target)
        queued = queued_cars(
            campaign, groups, {vin: self.car(vin).firmware for vin in self.cars}, now
        )
        self.vehicles.setdefault(campaign.campaign_id, {}).update((v.vin, v) for v in queued)
        out.vehicles.extend(queued)
        progress = [GroupProgress(index, len(vins)) for index, vins in enumerate(groups)]
        started = replace(campaign, state=CampaignState.RUNNING, started_at=now, groups=progress)
        if not groups:
            self._put(
                out, ended_as(started, CampaignState.FINISHED, now, "no car fits the segment")
            )
            return
        self._put(
            out, with_entry(started, now, "started", ORCHESTRATOR, f"{sum(map(len, groups))} cars")
        )
        self._next_group(out, self.campaigns[campaign.campaign_id], now, ORCHESTRATOR)

    def _next_group(self, out: Outcome, campaign: Campaign, now: int, by: str) -> None:
        following = campaign.group + 1
        if following >= len(campaign.groups):
            return
        groups = [
            replace(g, started_at=now) if g.index == following else g for g in campaign.groups
        ]
        note = f"group {following + 1} of {len(groups)}: {groups[following].size} cars"
        opened = replace(campaign, group=following, groups=groups)
        self._put(out, with_entry(opened, now, "group-started", by, note))

    def _evaluate(self, out: Outcome, campaign: Campaign, now: int) -> None:
        decided = verdict(campaign, self._counts(campaign.campaign_id))
        if decided is None:
            return
        why = decided.why
        if decided.move == "next-group":
            self._next_group(out, campaign, now, ORCHESTRATOR)
        elif decided.move == "finish":
            self._put(out, ended_as(campaign, CampaignState.FINISHED, now, why or "done"))
        elif decided.move == "abort":
            self._abort(out, campaign, now, why or "aborted")
        else:
            paused_for = "errors" if decided.move == "pause-errors" else "group-done"
            paused = replace(
                campaign, state=CampaignState.PAUSED, paused_for=paused_for, reason=why
            )
            self._put(out, with_entry(paused, now, "paused", ORCHESTRATOR, why))

    def _counts(self, campaign_id: str) -> Counts:
        return counts_of([(v.group, v.state) for v in self.vehicles.get(campaign_id, {}).values()])

    # cars ---------------------------------------------------------------------------------------

    def software_state(self, vin: str, report: SoftwareReport, now: int) -> Outcome:
        out = Outcome()
        car = self.car(vin)
        car.firmware = report.installed
        if report.campaign_id is None:
            return out
        vehicle = self.vehicles.get(report.campaign_id, {}).get(vin)
        state = STEP_STATE[report.step]
        if vehicle is None or (
            vehicle.state is state and vehicle.progress_pct == report.progress_pct
        ):
            return out
        if vehicle.state.ended and state is not RolloutState.SUCCEEDED:
            return out  # a late word on an attempt already settled; success is always news
        self._settle(
            out,
            vehicle,
            state,
            report.reason,
            now,
            reported=report.installed,
            progress_pct=report.progress_pct,
        )
        return out

    def command_status(
        self, command_id: str, vin: str, state: CommandState, reason: str | None, now: int
    ) -> Outcome:
        out = Outcome()
        outcome = COMMAND_STATE.get(state)
        if outcome is None:
            return out
        for vehicles in self.vehicles.values():
            vehicle = vehicles.get(vin)
            if vehicle is not None and vehicle.command_id == command_id:
                if vehicle.state in IN_FLIGHT:
                    self._settle(out, vehicle, outcome, reason or f"command {state}", now)
                break
        return out

    def _settle(
        self,
        out: Outcome,
        vehicle: CampaignVehicle,
        state: RolloutState,
        reason: str | None,
        now: int,
        **changes: object,
    ) -> None:
        campaign = self.campaigns.get(vehicle.campaign_id)
        changes |= settled(campaign, vehicle, state, reason, now)
        self._set(out, vehicle, now, **changes)

    def _set(self, out: Outcome, vehicle: CampaignVehicle, now: int, **changes: object) -> None:
        changed = msgspec.structs.replace(vehicle, ts=now, **changes)
        self.vehicles[vehicle.campaign_id][vehicle.vin] = changed
        out.vehicles.append(changed)

    # the clock ----------------------------------------------------------------------------------

    def tick(self, now: int) -> Outcome:
        out = Outcome()
        elapsed = 0 if self._last_tick is None else max(0, now - self._last_tick)
        self._last_tick = now
        for campaign in list(self.campaigns.values()):
            if campaign.state is CampaignState.SCHEDULED:
                if campaign.spec.start_at is not None and now < campaign.spec.start_at:
                    continue
                self._start(out, campaign, now)
                campaign = self.campaigns[campaign.campaign_id]
            if campaign.state not in (CampaignState.RUNNING, CampaignState.PAUSED):
                self._budget.pop(campaign.campaign_id, None)
                continue
            self._time_out(out, campaign, now)
            campaign = self.campaigns[campaign.campaign_id]
            if campaign.state is CampaignState.RUNNING:
                self._send(out, campaign, now, elapsed)
                self._evaluate(out, campaign, now)
        for campaign in list(self.campaigns.values()):
            self._progress(out, campaign, now)
        return out

    def _time_out(self, out: Outcome, campaign: Campaign, now: int) -> None:
        spec = campaign.spec
        vehicles = self.vehicles.get(campaign.campaign_id, {})
        window_closed = (
            campaign.started_at is not None and now >= campaign.started_at + spec.window_s * 1000
        )
        for vehicle in list(vehicles.values()):
            if window_closed and not vehicle.state.ended:
                if vehicle.state in IN_FLIGHT and vehicle.command_id is not None:
                    out.withdrawals.append(
                        Withdrawal(campaign.campaign_id, vehicle.vin, vehicle.command_id, True)
                    )
                self._set(
                    out,
                    vehicle,
                    now,
                    state=RolloutState.TIMED_OUT,
                    finished_at=now,
                    reason="the campaign's window closed first",
                )
            elif (
                vehicle.state in IN_FLIGHT
                and vehicle.notified_at is not None
                and (now >= vehicle.notified_at + spec.vehicle_timeout_s * 1000)
            ):
                if vehicle.command_id is not None:
                    out.withdrawals.append(
                        Withdrawal(campaign.campaign_id, vehicle.vin, vehicle.command_id, False)
                    )
                self._settle(
                    out,
                    vehicle,
                    RolloutState.TIMED_OUT,
                    f"no end within {spec.vehicle_timeout_s} s",
                    now,
                )
        if window_closed:
            self._put(
                out, ended_as(campaign, CampaignState.FINISHED, now, "the campaign's window closed")
            )

    def _send(self, out: Outcome, campaign: Campaign, now: int, elapsed_ms: int) -> None:
        """Orders to the queued cars of started groups that are online, within the rate."""
        spec = campaign.spec
        per_ms = spec.rate_per_min / 60_000
        burst = max(1.0, per_ms * 1000)  # at most a second's worth at once
        budget = min(burst, self._budget.get(campaign.campaign_id, burst) + elapsed_ms * per_ms)
        waiting = sorted(
            (
                v
                for v in self.vehicles.get(campaign.campaign_id, {}).values()
                if v.state is RolloutState.QUEUED
                and v.group <= campaign.group
                and self.car(v.vin).online
            ),
            key=lambda v: (v.group, v.attempts),
        )
        assert campaign.started_at is not None
        window_end = campaign.started_at + spec.window_s * 1000
        for vehicle in waiting:
            if budget < 1:
                break
            budget -= 1
            attempt = vehicle.attempts + 1
            order = Order(
                campaign_id=campaign.campaign_id,
                vin=vehicle.vin,
                command_id=update_command_id(campaign.campaign_id, vehicle.vin, attempt),
                group=vehicle.group,
                expires_at=min(now + spec.vehicle_timeout_s * 1000, window_end),
            )
            out.orders.append(order)
            self._set(
                out,
                vehicle,
                now,
                state=RolloutState.NOTIFIED,
                attempts=attempt,
                command_id=order.command_id,
                notified_at=now,
                progress_pct=None,
                finished_at=None,
            )
        self._budget[campaign.campaign_id] = budget

    def _progress(self, out: Outcome, campaign: Campaign, now: int) -> None:
        """The campaign record with fresh counts: at once on a change of state, else at most
        every ``progress_every_ms``."""
        if not campaign.groups:
            return
        groups = counted(campaign.groups, self._counts(campaign.campaign_id))
        if groups == campaign.groups:
            return
        if campaign.campaign_id in out.campaigns or now - campaign.ts >= self._progress_every_ms:
            self._put(out, replace(campaign, groups=groups, ts=now))

    def _put(self, out: Outcome, campaign: Campaign) -> None:
        self.campaigns[campaign.campaign_id] = campaign
        out.campaigns[campaign.campaign_id] = campaign
