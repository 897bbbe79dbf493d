"""msgspec models of the messages vehicles send, and of the records fleetlink writes to Kafka.

Unknown fields are accepted and ignored so that a newer vehicle agent does not break an older
gateway; known fields are validated strictly (types, ranges, VSS path shape, VIN shape).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta

from fleetlink.contracts.vin import VIN_PATTERN
from fleetlink.contracts.vss import VSS_PATH_PATTERN

# 2100-01-01T00:00:00Z: a larger value is a unit mistake (micro- or nanoseconds), not a date.
_MAX_EPOCH_MS: Final = 4_102_444_800_000

EpochMillis = Annotated[
    int, Meta(ge=0, le=_MAX_EPOCH_MS, description="event time, milliseconds since the Unix epoch")
]
SequenceNumber = Annotated[
    int, Meta(ge=0, description="per-vehicle counter, increases by one per message")
]
Vin = Annotated[str, Meta(pattern=VIN_PATTERN, description="ISO 3779 VIN")]
MessageId = Annotated[str, Meta(min_length=1, max_length=128)]
VssPath = Annotated[
    str, Meta(pattern=VSS_PATH_PATTERN, max_length=256, description="COVESA VSS signal path")
]
SignalValue = bool | int | float | str | list[str]
# a level of the command's MQTT topic: no "/", no wildcards, nothing a broker would refuse
COMMAND_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
GRANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
CommandId = Annotated[str, Meta(pattern=COMMAND_ID_PATTERN, description="command id")]


class Telemetry(msgspec.Struct, frozen=True, omit_defaults=True):
    """``vehicles/{vin}/telemetry``: a snapshot of VSS signals at event time ``ts``.

    ``resent`` marks backlog a vehicle flushes after being offline.
    """

    ts: EpochMillis
    seq: SequenceNumber
    signals: dict[VssPath, SignalValue]
    vin: Vin | None = None
    msg_id: MessageId | None = None
    resent: bool = False


class EventKind(StrEnum):
    """The ``{kind}`` level of ``vehicles/{vin}/events/{kind}``."""

    HARSH_BRAKING = "harsh-braking"
    HARSH_ACCELERATION = "harsh-acceleration"
    HARSH_CORNERING = "harsh-cornering"
    ESC_ACTIVATION = "esc-activation"
    ABS_ACTIVATION = "abs-activation"
    HAZARD_LIGHTS = "hazard-lights"
    DTC = "dtc"
    PARKING_GAP = "parking-gap"
    CRASH = "crash"
    TRUNK_RELOCKED = "trunk-relocked"  # closed and locked by itself after a delivery
    PARKED = "parked"  # stands at the curb (``contracts.parking``: where, how long a car)
    UNPARKED = "unparked"  # left its spot: the spot is free
    FEATURE_STATE = "feature-state"  # a feature turned on or off (``data``: feature, active)
    SOFTWARE_STATE = "software-state"  # an update's steps (``contracts.campaigns.SoftwareReport``)


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """``vehicles/{vin}/events/{kind}``: something happened at ``ts``; details in ``data``."""

    ts: EpochMillis
    seq: SequenceNumber
    data: dict[str, Any] = {}
    latitude: Annotated[float, Meta(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Meta(ge=-180, le=180)] | None = None
    heading_deg: Annotated[float, Meta(ge=0, le=360)] | None = None  # direction of travel
    speed_kmh: Annotated[float, Meta(ge=0, le=1000)] | None = None
    vin: Vin | None = None
    msg_id: MessageId | None = None
    resent: bool = False


class Tick(msgspec.Struct, frozen=True):
    """``fleet.ticks``: time goes on (epoch ms), for stream apps' expiry without input."""

    ts: EpochMillis


class PresenceStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Presence(msgspec.Struct, frozen=True, omit_defaults=True):
    """``vehicles/{vin}/presence`` (retained): birth message on connect, last will on loss.

    The gateway writes it unchanged to the compacted ``fleet.presence`` (key VIN), so the topic
    holds each vehicle's latest state; ``ts`` is when it was last seen.
    """

    status: PresenceStatus
    ts: EpochMillis
    reason: Annotated[str, Meta(max_length=256)] | None = None
    # what the car is: the catalogue's compatibility checks read them (birth and will alike)
    model: Annotated[str, Meta(max_length=64)] | None = None
    firmware: Annotated[str, Meta(max_length=32)] | None = None


class ResponseStatus(StrEnum):
    """What a vehicle answers to a command."""

    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"


class CommandResponse(msgspec.Struct, frozen=True, omit_defaults=True):
    """``vehicles/{vin}/command-responses/{command_id}``: the vehicle's answer at ``ts``."""

    ts: EpochMillis
    status: ResponseStatus
    reason: Annotated[str, Meta(max_length=256)] | None = None
    seq: SequenceNumber | None = None
    msg_id: MessageId | None = None
    command_id: Annotated[str, Meta(max_length=128)] | None = None


class CommandName(StrEnum):
    """What a vehicle can be asked to do."""

    LOCK = "lock"
    UNLOCK = "unlock"
    TRUNK_OPEN = "trunk.open"
    TRUNK_CLOSE = "trunk.close"
    FLASH = "flash"
    HONK = "honk"
    CLIMATE = "climate"
    CHARGING_START = "charging.start"
    CHARGING_STOP = "charging.stop"
    FEATURE_ACTIVATE = "feature.activate"
    FEATURE_DEACTIVATE = "feature.deactivate"
    CONFIG_CHANGE = "config.change"
    GRANT_REVOKE = "grant.revoke"  # a digital key the car must refuse from now on
    SOFTWARE_UPDATE = "software.update"  # an OTA campaign's order (contracts.campaigns)
    SOFTWARE_CANCEL = "software.cancel"  # an aborted campaign: do not install


class Command(msgspec.Struct, frozen=True, omit_defaults=True):
    """``vehicles/{vin}/commands/{command_id}``: an order valid until ``expires_at``.

    The platform signs every command (Ed25519 over the canonical JSON of every other field,
    ``sig`` left out); the car verifies it with the platform keys it was given at registration.
    ``counter`` rises with every command a signer signs: with the id memory it stops replays.
    """

    command_id: CommandId
    name: CommandName
    issued_at: EpochMillis
    expires_at: EpochMillis
    params: dict[str, Any] = {}
    vin: Vin | None = None
    counter: Annotated[int, Meta(ge=0)] | None = None
    actor: Annotated[str, Meta(max_length=128)] | None = None  # who asked: the audit trail
    grant: Annotated[str, Meta(max_length=4096)] | None = None  # a digital key, when used
    grant_id: Annotated[str, Meta(max_length=64)] | None = None  # its id, for the audit trail
    kid: Annotated[str, Meta(max_length=64)] | None = None
    sig: Annotated[str, Meta(max_length=128)] | None = None


class GrantRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """``fleet.grants`` (compacted, key grant id): a digital key and whether it was revoked."""

    grant: Grant
    token: str
    revoked_at: EpochMillis | None = None
    revoked_by: str | None = None


class AuditEvent(msgspec.Struct, frozen=True, omit_defaults=True):
    """``fleet.audit`` (key VIN): who did what to which car, and what the platform decided."""

    ts: EpochMillis
    vin: Vin
    actor: str
    action: str  # grant.issued, grant.revoked, command.requested, command.refused
    grant_id: str | None = None
    command_id: str | None = None
    detail: str | None = None


class Geofence(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A circle the car must be in for a digital key to work."""

    latitude: Annotated[float, Meta(ge=-90, le=90)]
    longitude: Annotated[float, Meta(ge=-180, le=180)]
    radius_m: Annotated[float, Meta(gt=0, le=100_000)]


class Grant(msgspec.Struct, frozen=True, omit_defaults=True):
    """A delegated digital key: ``grantee`` may send ``commands`` to ``vin`` inside the window,
    at most ``max_uses`` times, optionally only inside ``geofence``. Signed by the platform
    (``fleetlink.security.signing``); the car checks it offline."""

    grant_id: Annotated[str, Meta(pattern=GRANT_ID_PATTERN)]
    vin: Vin
    grantee: Annotated[str, Meta(min_length=1, max_length=128)]
    commands: Annotated[list[CommandName], Meta(min_length=1, max_length=16)]
    not_before: EpochMillis
    not_after: EpochMillis
    max_uses: Annotated[int, Meta(ge=1, le=10_000)]
    issued_by: Annotated[str, Meta(min_length=1, max_length=128)]
    issued_at: EpochMillis
    geofence: Geofence | None = None


class CommandState(StrEnum):
    """Where a command is in its lifecycle (``fleet.command-status``)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class Transition(msgspec.Struct, frozen=True, omit_defaults=True):
    """One lifecycle step: a record on ``fleet.command-status`` (key: command id).

    The tracker writes the command's context (``created_at``, ``expires_at``, ``params``) into
    every step, so the compacted topic's last record per command is its whole current state.
    """

    command_id: str
    vin: Vin
    name: str
    state: CommandState
    ts: EpochMillis
    reason: str | None = None
    created_at: EpochMillis | None = None
    expires_at: EpochMillis | None = None
    params: dict[str, Any] | None = None
    idempotency_key: str | None = None
    actor: str | None = None  # the user who sent the command
    grant_id: str | None = None  # the digital key it was sent with


class CommandCancel(msgspec.Struct, frozen=True, omit_defaults=True):
    """A cancel request on ``fleet.commands`` (key VIN, header ``fl.kind: cancel``).

    It travels behind the command in the same partition, so the downlink sees it in order and
    alone decides whether the command can still be withheld from the vehicle.
    """

    command_id: CommandId
    ts: EpochMillis
    reason: str = "cancelled-by-client"


SeqRange = Annotated[
    tuple[SequenceNumber, SequenceNumber], Meta(description="first and last seq, both included")
]


class Delivered(msgspec.Struct, frozen=True, omit_defaults=True):
    """``vehicles/{vin}/delivered``: these of the car's messages are durably in Kafka.

    The gateway worker that wrote them (as records or dead letters) says so, batched; ``boot``
    and the ranges of ``seq`` are the ones the car stamped on the messages (MQTT 5 user
    properties ``fl-boot`` and ``fl-seq``). A car keeps every message until it is confirmed.
    """

    ts: EpochMillis
    boot: Annotated[str, Meta(min_length=1, max_length=64)]
    ranges: Annotated[list[SeqRange], Meta(max_length=65_536)]


MODELS: Final[dict[str, type[msgspec.Struct]]] = {
    "telemetry": Telemetry,
    "event": Event,
    "presence": Presence,
    "command-response": CommandResponse,
    "command": Command,
    "command-status": Transition,
    "command-cancel": CommandCancel,
    "grant": Grant,
    "grant-record": GrantRecord,
    "audit-event": AuditEvent,
    "delivered": Delivered,
    "tick": Tick,
}
