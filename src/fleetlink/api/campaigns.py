"""OTA campaigns over HTTP: a fleet admin asks for a rollout, a second admin approves it, admins
steer it (pause, resume, next group, abort); admins and viewers follow it car by car.

The API checks what it can answer at once (the image is released, the groups fit in 100 %, the
segment includes the image's target, the action fits the campaign's state, the approver is not
the creator: hawkBit's four-eyes rule) and writes the request to ``fleet.campaign-requests``;
the campaign orchestrator, the only writer of ``fleet.campaigns``, checks again and acts. Every
write is answered once Kafka acknowledged it (202), or 503.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from fleetlink.adapters.kafka.seams import RecordSink
from fleetlink.api.auth import Caller
from fleetlink.api.errors import (
    AUTHENTICATED,
    WITH_BODY,
    ApiError,
    CampaignIdPath,
    documented,
    read_when_ready,
)
from fleetlink.campaigns.images import ImageRepository
from fleetlink.campaigns.read_model import CampaignReadModel
from fleetlink.contracts.campaigns import (
    Campaign,
    CampaignAction,
    CampaignRequest,
    CampaignSpec,
    CampaignState,
    CampaignVehicle,
    CreateCampaign,
    ImageMetadata,
    RolloutState,
)
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, encode
from fleetlink.security.access import Principal
from fleetlink.security.images import OtaTrust

router = APIRouter(prefix="/v1", tags=["campaigns"], responses=documented(*AUTHENTICATED))

# campaign ids of idempotency keys: uuid5 in a namespace of OTA campaigns' own
CAMPAIGN_NAMESPACE: Final = uuid.UUID("3d0b8f4e-6c1a-4f57-9e2d-7a5c1b9e0f63")
_ID_HEX: Final = 20  # "c" + 20 hex digits: 80 bits, within CAMPAIGN_ID's pattern
_BAD_BODY: Final = (DlqReason.NOT_JSON, DlqReason.INVALID_UTF8, DlqReason.EMPTY)

CAMPAIGN_LINKS = {
    name: {"operationId": operation, "parameters": {"campaign_id": "$response.body#/campaign_id"}}
    for name, operation in (
        ("GetCampaign", "get_campaign"),
        ("CampaignVehicles", "campaign_vehicles"),
        ("ApproveCampaign", "approve_campaign"),
        ("AbortCampaign", "abort_campaign"),
    )
}


@dataclass
class CampaignsState:
    view: CampaignReadModel
    images: ImageRepository
    trust: OtaTrust  # checks the download tokens the orchestrator hands cars
    requests_topic: str
    deliveries: RecordSink | None = field(default=None)

    async def write(self, request: CampaignRequest) -> None:
        """To ``fleet.campaign-requests``, keyed by campaign: Kafka's ack, or 503."""
        assert self.deliveries is not None
        key = request.campaign_id.encode()
        await self.deliveries.produce(self.requests_topic, encode(request), key, [])


def campaigns_state(request: Request) -> CampaignsState:
    state: CampaignsState = request.app.state.campaigns
    return state


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def full_json(value: Any) -> Any:
    """A record with every field, defaults included (``omit_defaults`` is for Kafka's sake):
    clients see the same keys whatever the values."""
    if isinstance(value, msgspec.Struct):
        return {
            f.encode_name: full_json(getattr(value, f.name)) for f in msgspec.structs.fields(value)
        }
    if isinstance(value, list | tuple):
        return [full_json(item) for item in value]
    if isinstance(value, dict):
        return {key: full_json(item) for key, item in value.items()}
    return msgspec.to_builtins(value)


def campaign_id_for(user: str, idempotency_key: str | None) -> str:
    """The id a user's idempotency key names (the same every retry); random without one."""
    if idempotency_key is None:
        return "c" + uuid.uuid4().hex[:_ID_HEX]
    return "c" + uuid.uuid5(CAMPAIGN_NAMESPACE, f"{user}/{idempotency_key}").hex[:_ID_HEX]


def links(campaign_id: str) -> dict[str, str]:
    base = f"/v1/campaigns/{campaign_id}"
    actions = {action.value: f"{base}/{action.value}" for action in CampaignAction}
    return {"self": base, "vehicles": f"{base}/vehicles", **actions}


def _ready(request: Request) -> CampaignReadModel:
    return read_when_ready(campaigns_state(request).view, "the campaigns")


def require_reader(caller: Principal) -> None:
    if not caller.may_read_campaigns:
        raise ApiError(403, "forbidden", f"the {caller.role.value} role sees no campaigns")


def require_admin(caller: Principal, what: str) -> None:
    if not caller.may_run_campaigns:
        raise ApiError(403, "forbidden", f"only a fleet admin {what}")


def known_campaign(request: Request, campaign_id: str) -> Campaign:
    campaign = _ready(request).campaign(campaign_id)
    if campaign is None:
        raise ApiError(404, "unknown-campaign", f"no campaign {campaign_id}")
    return campaign


# creating -----------------------------------------------------------------------------------


def _inlined(model: Any) -> dict[str, Any]:
    """A contract model's JSON Schema with its nested structs written out in place, for the
    OpenAPI document (which has no ``$defs`` of msgspec's)."""
    schema = msgspec.json.schema(model)
    defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = dict(defs[node["$ref"].rsplit("/", 1)[-1]])
                target.pop("title", None)
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return resolve({**target, **rest})
            return {key: resolve(item) for key, item in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    body: dict[str, Any] = resolve({k: v for k, v in schema.items() if k != "$defs"})
    return body


_EXAMPLE: Final = {
    "name": "infotainment 2026.41 for sedans",
    "image": "infotainment",
    "version": "2026.41",
    "segment": {"models": ["fl-sedan"]},
    "groups": [1, 10, 50],
}
_SPEC_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inlined(CampaignSpec) | {"examples": [_EXAMPLE]}}
        },
    }
}


def _field_of(detail: str) -> str | None:
    """The field msgspec names in its error: ``... - at `$.segment.models[0]``` or
    ``Object missing required field `image```."""
    if "- at `$." in detail:
        return detail.rsplit("- at `$.", 1)[1].rstrip("`")
    if "field `" in detail:
        return detail.rsplit("field `", 1)[1].split("`", 1)[0]
    return None


def read_spec(raw: bytes) -> CampaignSpec:
    """The body as a ``CampaignSpec``, checked by the contract's own decoder (the one the
    orchestrator uses): 400 when it is no JSON, 422 naming the field that breaks a rule."""
    try:
        return decode(CampaignSpec, raw)
    except UndecodableError as bad:
        if bad.reason in _BAD_BODY:
            raise ApiError(400, bad.reason.value, bad.detail) from None
        raise ApiError(422, "invalid-campaign", bad.detail, field=_field_of(bad.detail)) from None


def spec_refusal(spec: CampaignSpec, image: ImageMetadata | None) -> ApiError | None:
    """Why the API refuses this campaign at once (422), or None."""
    if image is None:
        return ApiError(
            422,
            "unknown-image",
            f"no released image {spec.image} {spec.version}; publish it with `fleetlink ota"
            " publish` first",
            field="image",
        )
    total = round(sum(spec.groups), 6)  # 33.3 + 33.3 + 33.4 is 100, not 100.00000000000001
    if total > 100:
        return ApiError(
            422, "groups-over-100", f"the groups add up to {total:g} %, at most 100", field="groups"
        )
    models = spec.segment.models
    if models and image.target not in models:
        return ApiError(
            422,
            "segment-excludes-target",
            f"{spec.image} {spec.version} is built for {image.target}, which segment.models"
            f" {models} leaves out",
            field="segment.models",
        )
    region = spec.segment.region
    if region is not None and (region.south > region.north or region.west > region.east):
        return ApiError(
            422, "empty-region", "a region's south lies below its north, its west left of its east",
            field="segment.region",
        )  # fmt: skip
    return None


def _answer(campaign: Campaign, status: int) -> JSONResponse:
    body = {
        "campaign_id": campaign.campaign_id,
        "state": campaign.state.value,
        "links": links(campaign.campaign_id),
    }
    location = {"Location": f"/v1/campaigns/{campaign.campaign_id}"}
    return JSONResponse(body, status_code=status, headers=location)


@router.post(
    "/campaigns",
    status_code=202,
    summary="Ask for a rollout of a released image to a segment of the fleet (fleet admins)",
    responses={
        200: {"description": "The same Idempotency-Key again: the campaign it created"},
        202: {"description": "Kafka has the request; it awaits approval", "links": CAMPAIGN_LINKS},
        **documented(*WITH_BODY, 409, 503),
    },
    openapi_extra=_SPEC_BODY,
)
async def create_campaign(
    request: Request,
    caller: Caller,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=128,
            description="the same key again names the same campaign: retry safely",
        ),
    ] = None,
) -> JSONResponse:
    """422 when the image is not released, the groups add up to more than 100 %, or
    ``segment.models`` leaves out the image's target; then it awaits a second admin's
    approval."""
    require_admin(caller, "creates campaigns")
    spec = read_spec(await request.body())
    state = campaigns_state(request)
    view = _ready(request)
    campaign_id = campaign_id_for(caller.name, idempotency_key)
    known = view.campaign(campaign_id)
    if known is not None:
        if known.spec != spec:
            raise ApiError(
                409,
                "idempotency-conflict",
                "this Idempotency-Key was used for another campaign",
                campaign_id=campaign_id,
            )
        return _answer(known, 200)
    image = await asyncio.to_thread(state.images.get, spec.image, spec.version)
    refusal = spec_refusal(spec, image)
    if refusal is not None:
        raise refusal
    now = now_ms()
    await state.write(CreateCampaign(campaign_id=campaign_id, spec=spec, by=caller.name, ts=now))
    asked = Campaign(
        campaign_id=campaign_id,
        spec=spec,
        created_by=caller.name,
        created_at=now,
        state=CampaignState.AWAITING_APPROVAL,
        ts=now,
    )
    view.asked(asked)
    return _answer(asked, 202)


# following ----------------------------------------------------------------------------------


@router.get(
    "/campaigns",
    summary="Every campaign, the newest first (fleet admins and viewers)",
    responses=documented(503),
)
async def list_campaigns(
    request: Request,
    caller: Caller,
    state: Annotated[CampaignState | None, Query(description="only campaigns in it")] = None,
) -> JSONResponse:
    require_reader(caller)
    campaigns = [c for c in _ready(request).all() if state is None or c.state is state]
    rows = []
    for campaign in campaigns:
        row = full_json(campaign)
        row.pop("history")  # GET /v1/campaigns/{id} has it
        rows.append(row)
    return JSONResponse({"campaigns": rows})


@router.get(
    "/campaigns/{campaign_id}",
    summary="A campaign: its definition, state, history, and where its cars are",
    responses=documented(404, 503),
)
async def get_campaign(
    request: Request, campaign_id: CampaignIdPath, caller: Caller
) -> JSONResponse:
    """``summary``: per group the cars in each rollout state, how long cars that succeeded took
    (p50, p95, max from order to end) and the failure reasons (code -> cars)."""
    require_reader(caller)
    campaign = known_campaign(request, campaign_id)
    summary = campaigns_state(request).view.summary(campaign_id)
    body = full_json(campaign) | {"summary": full_json(summary), "links": links(campaign_id)}
    return JSONResponse(body)


def vehicle_json(vehicle: CampaignVehicle) -> dict[str, Any]:
    row: dict[str, Any] = full_json(vehicle)
    row["apply_ms"] = vehicle.apply_ms
    return row


@router.get(
    "/campaigns/{campaign_id}/vehicles",
    summary="A campaign's cars by group and VIN: desired and reported version, state, reason",
    responses=documented(404, 503),
)
async def campaign_vehicles(
    request: Request,
    campaign_id: CampaignIdPath,
    caller: Caller,
    state: Annotated[RolloutState | None, Query(description="only cars in it")] = None,
    group: Annotated[int | None, Query(ge=0, le=100, description="only this group")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONResponse:
    """``total``: how many cars match; at most ``limit`` of them are listed."""
    require_reader(caller)
    known_campaign(request, campaign_id)
    cars = campaigns_state(request).view.vehicles_of(campaign_id, state=state, group=group)
    return JSONResponse(
        {
            "campaign_id": campaign_id,
            "total": len(cars),
            "vehicles": [vehicle_json(car) for car in cars[:limit]],
        }
    )
