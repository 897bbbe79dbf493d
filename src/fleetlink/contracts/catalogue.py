"""What each command means: its parameters, TTL limits, delivery rule and visible effect.

One table for everyone: the API validates requests with it, the vehicle agent validates again
before acting, the downlink applies latest-wins, the tracker reconciles lost answers from the
effect it expects to see in telemetry.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta

from fleetlink.contracts import vss
from fleetlink.contracts.campaigns import SoftwareCancelParams, SoftwareUpdateParams
from fleetlink.contracts.models import CommandName, SignalValue

MINUTE: Final = 60
DAY: Final = 86_400


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    """The command takes no parameters."""


class ClimateParams(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    on: bool = True
    target_c: Annotated[float, Meta(ge=15, le=30)] | None = None


class FeatureParams(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    feature: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    # the car checks its own firmware too: what the platform last heard may be out of date
    min_firmware: Annotated[str, Meta(pattern=r"^\d{1,6}(\.\d{1,6}){0,3}$")] | None = None
    until: Annotated[int, Meta(ge=0)] | None = None  # a subscription's end: off by itself then
    purchase_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class FeatureOffParams(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    feature: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    reason: Annotated[str, Meta(max_length=256)] | None = None


class RevokeParams(msgspec.Struct, forbid_unknown_fields=True):
    grant_id: Annotated[str, Meta(min_length=1, max_length=64)]


ConfigParams = Annotated[
    dict[Annotated[str, Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$")], SignalValue],
    Meta(min_length=1, max_length=64),
]


class CommandSpec(msgspec.Struct, frozen=True):
    params: Any  # the msgspec type the parameters must convert to
    default_ttl_s: int
    max_ttl_s: int
    latest_wins: bool = False  # a setting: a newer one replaces an older still queued
    # the telemetry signal that shows the effect, and the value it should take
    effect: tuple[str, SignalValue] | None = None


def _actuation(effect: tuple[str, SignalValue] | None = None) -> CommandSpec:
    return CommandSpec(NoParams, default_ttl_s=MINUTE, max_ttl_s=10 * MINUTE, effect=effect)


CATALOGUE: Final[dict[CommandName, CommandSpec]] = {
    CommandName.LOCK: _actuation((vss.DOOR_ROW1_DRIVER_IS_LOCKED, True)),
    CommandName.UNLOCK: _actuation((vss.DOOR_ROW1_DRIVER_IS_LOCKED, False)),
    CommandName.TRUNK_OPEN: _actuation((vss.TRUNK_REAR_IS_OPEN, True)),
    CommandName.TRUNK_CLOSE: _actuation((vss.TRUNK_REAR_IS_OPEN, False)),
    CommandName.FLASH: _actuation(),
    CommandName.HONK: _actuation(),
    CommandName.CLIMATE: CommandSpec(ClimateParams, 5 * MINUTE, 60 * MINUTE, latest_wins=True),
    CommandName.CHARGING_START: CommandSpec(
        NoParams, 5 * MINUTE, 60 * MINUTE, effect=(vss.BATTERY_IS_CHARGING, True)
    ),
    CommandName.CHARGING_STOP: CommandSpec(
        NoParams, 5 * MINUTE, 60 * MINUTE, effect=(vss.BATTERY_IS_CHARGING, False)
    ),
    CommandName.FEATURE_ACTIVATE: CommandSpec(FeatureParams, 7 * DAY, 30 * DAY),
    # sent by the platform when an entitlement ends (refund, expiry): waits for an offline car
    CommandName.FEATURE_DEACTIVATE: CommandSpec(FeatureOffParams, 30 * DAY, 30 * DAY),
    CommandName.CONFIG_CHANGE: CommandSpec(ConfigParams, 7 * DAY, 30 * DAY, latest_wins=True),
    # sent by the platform when an owner revokes a key; waits for an offline car a long time
    CommandName.GRANT_REVOKE: CommandSpec(RevokeParams, 30 * DAY, 30 * DAY),
    # sent by the campaign orchestrator; valid as long as the car's turn in the campaign lasts
    CommandName.SOFTWARE_UPDATE: CommandSpec(SoftwareUpdateParams, DAY, 90 * DAY),
    CommandName.SOFTWARE_CANCEL: CommandSpec(SoftwareCancelParams, 30 * DAY, 90 * DAY),
}


class InvalidParamsError(ValueError):
    """Parameters that do not fit the command; the message says which and why."""


def validate_params(name: CommandName, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters checked and normalised (defaults filled), or ``InvalidParamsError``."""
    spec = CATALOGUE[name]
    try:
        converted = msgspec.convert(params, spec.params)
    except msgspec.ValidationError as error:
        raise InvalidParamsError(str(error)) from None
    result = msgspec.to_builtins(converted)
    if not isinstance(result, dict):  # pragma: no cover - every params type is a mapping
        raise InvalidParamsError("parameters must be an object")
    return result


def ttl_limits(name: CommandName) -> tuple[int, int]:
    """(default, maximum) TTL in seconds."""
    spec = CATALOGUE[name]
    return spec.default_ttl_s, spec.max_ttl_s
