"""Steering OTA campaigns over HTTP (fleet admins): approve (a second admin: the four-eyes
rule), pause, resume, start the next group, abort. An action that does not fit the campaign's
state is refused at once (409); one that fits goes to ``fleet.campaign-requests`` (202), where
the orchestrator checks it again and acts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from fleetlink.api.auth import Caller
from fleetlink.api.bodies import ApiBody
from fleetlink.api.campaigns import campaigns_state, known_campaign, links, now_ms, require_admin
from fleetlink.api.errors import AUTHENTICATED, WITH_BODY, ApiError, CampaignIdPath, documented
from fleetlink.campaigns.records import ALLOWED  # the orchestrator's rules: it has the last word
from fleetlink.contracts.campaigns import Campaign, CampaignAction, ControlCampaign
from fleetlink.security.access import Principal

router = APIRouter(prefix="/v1", tags=["campaigns"], responses=documented(*AUTHENTICATED))


class ControlRequest(ApiBody):
    note: str | None = Field(
        default=None, max_length=256, description="why: kept in the campaign's history"
    )


async def control(
    request: Request,
    campaign_id: str,
    action: CampaignAction,
    caller: Principal,
    body: ControlRequest | None,
) -> JSONResponse:
    require_admin(caller, "steers campaigns")
    campaign = known_campaign(request, campaign_id)
    allowed = ALLOWED[action]
    if campaign.state not in allowed:
        fits = ", ".join(sorted(s.value for s in allowed))
        raise ApiError(
            409,
            "invalid-state",
            f"campaign {campaign_id} is {campaign.state.value}; {action.value} needs {fits}",
            state=campaign.state.value,
        )
    if action is CampaignAction.APPROVE and campaign.created_by == caller.name:
        raise ApiError(
            409,
            "second-admin-required",
            f"{caller.name} created campaign {campaign_id}: another fleet admin approves it",
            created_by=campaign.created_by,
        )
    if action is CampaignAction.NEXT_GROUP:
        _check_next_group(campaign)
    note = body.note if body is not None else None
    asked = ControlCampaign(campaign_id, action, by=caller.name, ts=now_ms(), note=note)
    await campaigns_state(request).write(asked)
    return JSONResponse(
        {
            "campaign_id": campaign_id,
            "action": action.value,
            "state": campaign.state.value,
            "links": links(campaign_id),
        },
        status_code=202,
    )


def _check_next_group(campaign: Campaign) -> None:
    if campaign.started_at is None:
        raise ApiError(409, "not-started", f"campaign {campaign.campaign_id} has not started")
    if campaign.groups and campaign.group >= len(campaign.groups) - 1:
        raise ApiError(
            409, "no-next-group", f"the last group of {campaign.campaign_id} has started already"
        )


_STEERING = documented(*WITH_BODY, 404, 409, 503)


def _steering(action: CampaignAction, summary: str, description: str) -> None:
    """One route per action: each its own operation for generated clients."""

    async def steer(
        request: Request,
        campaign_id: CampaignIdPath,
        caller: Caller,
        body: ControlRequest | None = None,
    ) -> JSONResponse:
        return await control(request, campaign_id, action, caller, body)

    name = f"{action.value.replace('-', '_')}_campaign"
    router.post(
        f"/campaigns/{{campaign_id}}/{action.value}",
        status_code=202,
        name=name,
        summary=summary,
        description=description,
        responses={202: {"description": "Kafka has the request"}, **_STEERING},
    )(steer)


_steering(
    CampaignAction.APPROVE,
    "Approve a campaign awaiting approval (a fleet admin other than its creator)",
    "409 second-admin-required when its creator approves (four eyes); 409 invalid-state when it"
    " does not await approval.",
)
_steering(
    CampaignAction.PAUSE,
    "Pause a running or scheduled campaign: no new orders go out until it resumes",
    "409 invalid-state unless it is running or scheduled.",
)
_steering(
    CampaignAction.RESUME,
    "Resume a paused campaign (past its error threshold, if that paused it)",
    "409 invalid-state unless it is paused.",
)
_steering(
    CampaignAction.NEXT_GROUP,
    "Start the next group now, without waiting for the success threshold",
    "409 invalid-state unless it is running or paused.",
)
_steering(
    CampaignAction.ABORT,
    "Abort a campaign: no new orders, cars not installing yet are cancelled",
    "409 invalid-state once it has ended (finished or aborted).",
)
