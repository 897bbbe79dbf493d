"""The rules of a command request, without Kafka or HTTP: every refusal and every acceptance."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from fleetlink.commands.intake import (
    Accepted,
    Refused,
    Replayed,
    Request,
    command_id_for,
    decide,
)
from fleetlink.contracts.catalogue import ttl_limits
from fleetlink.contracts.models import (
    CommandName,
    CommandState,
    Grant,
    GrantRecord,
    Transition,
)
from fleetlink.security.access import Principal
from fleetlink.security.users import UserRole

CAR = "FLKZZZ1JZXW000001"
OTHER = "FLKZZZ1JZXW000002"
NOW = 1_800_000_000_000
ADMIN = Principal("ada", UserRole.FLEET_ADMIN, frozenset())
OWNER = Principal("olga", UserRole.OWNER, frozenset({CAR}))
VIEWER = Principal("vera", UserRole.VIEWER, frozenset())
COURIER = Principal("parcelco", UserRole.SERVICE, frozenset())


def key(grant_id: str = "key-1", *, grantee: str = "parcelco", **changes: object) -> GrantRecord:
    grant = Grant(
        grant_id=grant_id,
        vin=CAR,
        grantee=grantee,
        commands=[CommandName.TRUNK_OPEN],
        not_before=NOW - 60_000,
        not_after=NOW + 30_000,
        max_uses=2,
        issued_by="olga",
        issued_at=NOW - 60_000,
    )
    return GrantRecord(grant=grant, token="signed-key", **changes)  # type: ignore[arg-type]


@dataclass
class Fleet:
    """What the read model would know."""

    vehicles: set[str] = field(default_factory=lambda: {CAR, OTHER})
    grants: dict[str, GrantRecord] = field(default_factory=dict)
    steps: dict[str, Transition] = field(default_factory=dict)
    uses: dict[str, int] = field(default_factory=dict)

    def grant(self, grant_id: str) -> GrantRecord | None:
        return self.grants.get(grant_id)

    def knows_vehicle(self, vin: str) -> bool:
        return vin in self.vehicles

    def latest(self, command_id: str) -> Transition | None:
        return self.steps.get(command_id)

    def key_uses(self, grant_id: str) -> int:
        return self.uses.get(grant_id, 0)


def refused(decision: object) -> Refused:
    assert isinstance(decision, Refused), decision
    return decision


@pytest.mark.parametrize(
    ("request_", "caller", "status", "error", "audited"),
    [
        (Request("NOT-A-VIN", "flash"), ADMIN, 422, "invalid-vin", False),
        (Request(CAR, "flash", grant_id="nope"), COURIER, 403, "key-unknown", True),
        (Request(OTHER, "flash"), OWNER, 403, "forbidden", True),
        (Request(CAR, "flash"), VIEWER, 403, "forbidden", True),
        (Request(CAR, "flash"), COURIER, 403, "forbidden", True),  # a service needs a key
        (Request("FLKZZZ1JZXW000009", "flash"), ADMIN, 404, "unknown-vehicle", False),
        (Request(CAR, "teleport"), ADMIN, 422, "unknown-command", False),
        (Request(CAR, "grant.revoke"), ADMIN, 422, "unknown-command", False),
        (Request(CAR, "climate", {"target_c": 99}), ADMIN, 422, "invalid-params", False),
        (Request(CAR, "flash", ttl_s=10**7), ADMIN, 422, "invalid-ttl", False),
    ],
)
def test_each_rule_refuses_with_its_status_and_error(
    request_: Request, caller: Principal, status: int, error: str, audited: bool
) -> None:
    decision = refused(decide(request_, caller, Fleet(), NOW))
    assert (decision.status, decision.error, decision.audited) == (status, error, audited)
    assert decision.detail


def test_an_unknown_command_lists_the_known_ones() -> None:
    decision = refused(decide(Request(CAR, "teleport"), ADMIN, Fleet(), NOW))
    assert "trunk.open" in decision.extra["known"]


def test_an_owner_commands_its_car_with_the_default_ttl() -> None:
    decision = decide(Request(CAR, "flash"), OWNER, Fleet(), NOW)
    assert isinstance(decision, Accepted)
    command = decision.command
    assert (command.vin, command.name, command.actor) == (CAR, CommandName.FLASH, "olga")
    assert command.issued_at == NOW
    assert command.expires_at == NOW + ttl_limits(CommandName.FLASH)[0] * 1000
    assert command.grant is None
    assert not decision.audited


def test_the_same_idempotency_key_names_the_same_command_and_replays_it() -> None:
    fleet = Fleet()
    first = decide(Request(CAR, "flash", idempotency_key="k1"), ADMIN, fleet, NOW)
    assert isinstance(first, Accepted)
    assert first.command.command_id == command_id_for(CAR, "k1")
    assert command_id_for(OTHER, "k1") != command_id_for(CAR, "k1")  # per car
    fleet.steps[first.command.command_id] = Transition(
        command_id=first.command.command_id,
        vin=CAR,
        name="flash",
        state=CommandState.QUEUED,
        ts=NOW,
        params={},
    )
    again = decide(Request(CAR, "flash", idempotency_key="k1"), ADMIN, fleet, NOW + 5)
    assert again == Replayed(first.command.command_id)
    other = refused(decide(Request(CAR, "honk", idempotency_key="k1"), ADMIN, fleet, NOW))
    assert (other.status, other.error) == (409, "idempotency-conflict")
    assert other.extra["command_id"] == first.command.command_id


def test_a_courier_with_a_key_is_accepted_within_the_keys_window_and_audited() -> None:
    fleet = Fleet(grants={"key-1": key()})
    decision = decide(Request(CAR, "trunk.open", grant_id="key-1"), COURIER, fleet, NOW)
    assert isinstance(decision, Accepted)
    assert decision.command.grant == "signed-key"
    assert decision.command.grant_id == "key-1"
    assert decision.command.expires_at == NOW + 30_000  # clamped to the key's not_after
    assert decision.audited


@pytest.mark.parametrize(
    ("fleet", "name", "error"),
    [
        (Fleet(grants={"key-1": key(grantee="someone-else")}), "trunk.open", "key-not-yours"),
        (Fleet(grants={"key-1": key(revoked_at=NOW - 1)}), "trunk.open", "key-revoked"),
        (Fleet(grants={"key-1": key()}), "flash", "key-command-not-allowed"),
        (Fleet(grants={"key-1": key()}, uses={"key-1": 2}), "trunk.open", "key-used-up"),
    ],
)
def test_a_key_is_refused_for_what_it_does_not_allow(fleet: Fleet, name: str, error: str) -> None:
    decision = refused(decide(Request(CAR, name, grant_id="key-1"), COURIER, fleet, NOW))
    assert (decision.status, decision.error, decision.audited) == (403, error, True)
