"""Signatures, digital key rules, tokens, users and rate limits: pure logic, no broker."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetlink.contracts.models import Command, CommandName, Geofence, Grant
from fleetlink.security.access import Principal
from fleetlink.security.grants import MAX_CLOCK_SKEW_MS, grant_refusal
from fleetlink.security.ratelimit import RateLimiter
from fleetlink.security.signing import SignatureError, Signer, Verifier
from fleetlink.security.tokens import TokenError, TokenVerifier, issue_token
from fleetlink.security.users import User, UserError, UserRegistry, UserRole

VIN = "WVWZZZ1JZXW000001"
NOW = 1_790_000_000_000
HOUR = 3_600_000


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def command(**changes: object) -> Command:
    base = Command(
        command_id="c-1",
        name=CommandName.TRUNK_OPEN,
        issued_at=NOW,
        expires_at=NOW + 60_000,
        vin=VIN,
        actor="alice",
    )
    return msgspec.structs.replace(base, **changes)


def grant(**changes: object) -> Grant:
    base = Grant(
        grant_id="g-1",
        vin=VIN,
        grantee="courier",
        commands=[CommandName.TRUNK_OPEN],
        not_before=NOW,
        not_after=NOW + 2 * HOUR,
        max_uses=1,
        issued_by="alice",
        issued_at=NOW,
    )
    return msgspec.structs.replace(base, **changes)


# signed commands ---------------------------------------------------------------------------


def test_a_signed_command_verifies_and_survives_a_json_round_trip(key: Ed25519PrivateKey) -> None:
    signed = Signer(key).sign_command(command(params={"b": 1.5, "a": [1, 2]}))
    wire = msgspec.json.decode(msgspec.json.encode(signed), type=Command)
    Verifier.of(key.public_key()).check_command(wire)  # raises when it does not hold


def test_counters_rise_with_every_signature(key: Ed25519PrivateKey) -> None:
    signer = Signer(key)
    counters = [signer.sign_command(command()).counter for _ in range(100)]
    assert counters == sorted(set(counters))  # type: ignore[type-var]


@pytest.mark.parametrize(
    "tamper",
    [
        {"name": CommandName.UNLOCK},
        {"vin": "WVWZZZ1JZXW000002"},
        {"expires_at": NOW + 10 * HOUR},
        {"params": {"x": 1}},
        {"counter": 1},
        {"actor": "mallory"},
        {"grant": "a.b.c"},
    ],
)
def test_any_changed_field_breaks_the_signature(
    key: Ed25519PrivateKey, tamper: dict[str, object]
) -> None:
    signed = Signer(key).sign_command(command())
    with pytest.raises(SignatureError, match="bad-signature"):
        Verifier.of(key.public_key()).check_command(msgspec.structs.replace(signed, **tamper))


def test_unsigned_and_foreign_commands_are_refused(key: Ed25519PrivateKey) -> None:
    verifier = Verifier.of(key.public_key())
    with pytest.raises(SignatureError, match="unsigned"):
        verifier.check_command(command())
    foreign = Signer(Ed25519PrivateKey.generate()).sign_command(command())
    with pytest.raises(SignatureError, match="unknown-key"):
        verifier.check_command(foreign)
    # a forger who copies our key id still cannot make the signature hold
    forged = msgspec.structs.replace(foreign, kid=Signer(key).kid)
    with pytest.raises(SignatureError, match="bad-signature"):
        verifier.check_command(forged)


# digital keys ------------------------------------------------------------------------------


def test_a_grant_token_round_trips_and_resists_forgery(key: Ed25519PrivateKey) -> None:
    token = Signer(key).sign_grant(grant())
    verifier = Verifier.of(key.public_key())
    assert verifier.read_grant(token) == grant()
    _body, kid, signature = token.split(".")
    wider = Signer(key).sign_grant(grant(max_uses=100)).split(".")[0]
    with pytest.raises(SignatureError, match="key-bad-signature"):
        verifier.read_grant(f"{wider}.{kid}.{signature}")  # a body swapped under a signature
    with pytest.raises(SignatureError, match="key-unknown-signer"):
        verifier.read_grant(Signer(Ed25519PrivateKey.generate()).sign_grant(grant()))
    with pytest.raises(SignatureError, match="key-malformed"):
        verifier.read_grant("not-a-key")


def test_a_command_signature_is_not_a_grant_signature(key: Ed25519PrivateKey) -> None:
    """Domain separation: the signer never produces bytes valid in the other context."""
    signed = Signer(key).sign_command(command())
    body = msgspec.json.encode(msgspec.structs.replace(signed, sig=None), order="sorted")
    import base64

    fake = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    with pytest.raises(SignatureError):
        Verifier.of(key.public_key()).read_grant(f"{fake}.{signed.kid}.{signed.sig}")


def allowed(g: Grant, **kwargs: object) -> str | None:
    options: dict[str, object] = {"vin": VIN, "command": CommandName.TRUNK_OPEN, "now_ms": NOW}
    options.update(kwargs)
    return grant_refusal(g, **options)  # type: ignore[arg-type]


def test_grant_rules() -> None:
    assert allowed(grant()) is None
    assert allowed(grant(), revoked=True) == "key-revoked"
    assert allowed(grant(), vin="WVWZZZ1JZXW000002") == "key-wrong-vehicle"
    assert allowed(grant(), command=CommandName.UNLOCK) == "key-command-not-allowed"
    assert allowed(grant(), uses=1) == "key-used-up"
    assert allowed(grant(max_uses=3), uses=2) is None
    early = NOW - MAX_CLOCK_SKEW_MS - 1
    assert allowed(grant(), now_ms=early) == "key-not-yet-valid"
    assert allowed(grant(), now_ms=NOW - MAX_CLOCK_SKEW_MS + 1) is None  # bounded skew
    late = NOW + 2 * HOUR + MAX_CLOCK_SKEW_MS + 1
    assert allowed(grant(), now_ms=late) == "key-expired"


def test_geofence_is_checked_where_the_car_stands() -> None:
    fenced = grant(geofence=Geofence(latitude=52.52, longitude=13.40, radius_m=500))
    assert allowed(fenced, position=(52.521, 13.401)) is None  # about 130 m away
    assert allowed(fenced, position=(52.53, 13.40)) == "key-outside-geofence"  # about 1.1 km


# tokens and users --------------------------------------------------------------------------


def test_tokens_name_their_user_and_expire(key: Ed25519PrivateKey) -> None:
    verifier = TokenVerifier(key.public_key())
    token = issue_token(key, "alice", "owner", ttl_s=60)
    assert verifier.subject(token) == "alice"
    old = issue_token(key, "alice", "owner", ttl_s=-120)
    with pytest.raises(TokenError, match="expired"):
        verifier.subject(old)
    with pytest.raises(TokenError, match="invalid"):
        TokenVerifier(Ed25519PrivateKey.generate().public_key()).subject(token)
    for _ in range(2):  # a refused token is never remembered as good
        with pytest.raises(TokenError, match="invalid"):
            verifier.subject(token[:-4] + "AAAA")


def test_a_remembered_token_still_expires(key: Ed25519PrivateKey) -> None:
    verifier = TokenVerifier(key.public_key(), leeway_s=0)
    token = issue_token(key, "alice", "owner", ttl_s=2)
    assert verifier.subject(token) == "alice"
    assert verifier.subject(token) == "alice"  # remembered
    time.sleep(3.1)  # "exp" counts whole seconds
    with pytest.raises(TokenError, match="expired"):
        verifier.subject(token)


def test_an_unsigned_alg_none_token_is_refused(key: Ed25519PrivateKey) -> None:
    import jwt

    forged = jwt.encode(
        {"iss": "fleetlink", "sub": "root", "iat": 1, "exp": 2**40}, None, algorithm="none"
    )
    with pytest.raises(TokenError):
        TokenVerifier(key.public_key()).subject(forged)


def test_the_user_registry_validates_and_reloads(tmp_path: Path) -> None:
    registry = UserRegistry(tmp_path / "users.json")
    registry.put(User("alice", UserRole.OWNER, vins=[VIN]))
    other = UserRegistry(tmp_path / "users.json")  # a running API's view
    assert other.get("alice") == User("alice", UserRole.OWNER, vins=[VIN])
    registry.put(User("bob", UserRole.VIEWER))
    assert [user.name for user in other.all()] == ["alice", "bob"]
    with pytest.raises(UserError, match="only an owner"):
        registry.put(User("carol", UserRole.VIEWER, vins=[VIN]))
    with pytest.raises(UserError, match="not a VIN"):
        registry.put(User("dave", UserRole.OWNER, vins=["nope"]))
    with pytest.raises(UserError, match="not a user name"):
        registry.put(User("../x", UserRole.VIEWER))


# rate limits -------------------------------------------------------------------------------


def test_a_bucket_allows_the_burst_then_the_rate_and_keys_are_independent() -> None:
    limiter = RateLimiter(rate=10, burst=5)
    now = time.monotonic()
    assert [limiter.allow("a", now) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.allow("b", now)  # another key is not affected
    assert limiter.retry_after("a", now) == pytest.approx(0.1)
    assert limiter.allow("a", now + 0.1)
    assert not limiter.allow("a", now + 0.1)
    granted = sum(limiter.allow("a", now + 0.1 + i * 0.01) for i in range(1, 101))
    assert 9 <= granted <= 11  # 10 a second over one second


def test_the_limiter_forgets_the_least_recent_key_beyond_its_bound() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_keys=2)
    assert [limiter.allow(key, 0) for key in "abc"] == [True, True, True]
    assert limiter.allow("a", 0)  # forgotten, so full again
    assert not limiter.allow("c", 0)


# roles -------------------------------------------------------------------------------------


def test_roles_decide_who_reads_and_commands_what() -> None:
    other = "WVWZZZ1JZXW000002"
    admin = Principal("root", UserRole.FLEET_ADMIN, frozenset())
    owner = Principal("alice", UserRole.OWNER, frozenset({VIN}))
    courier = Principal("parcelco", UserRole.SERVICE, frozenset())
    viewer = Principal("vera", UserRole.VIEWER, frozenset())
    assert admin.command_refusal(other, with_grant=False) is None
    assert owner.command_refusal(VIN, with_grant=False) is None
    assert owner.command_refusal(other, with_grant=False) == f"{other} is not one of your vehicles"
    assert courier.command_refusal(VIN, with_grant=False) is not None
    assert courier.command_refusal(VIN, with_grant=True) is None  # the key decides the rest
    assert viewer.command_refusal(VIN, with_grant=True) is not None
    assert viewer.may_read_vehicle(other)
    assert not viewer.may_cancel(other, None)
    assert not owner.may_read_vehicle(other)
    assert courier.may_read_command(VIN, "parcelco")
    assert not courier.may_read_command(VIN, "x")
    assert courier.may_cancel(VIN, "parcelco")
    assert not courier.may_cancel(VIN, "alice")
    assert [owner.may_grant(VIN), owner.may_grant(other), courier.may_grant(VIN)] == [
        True,
        False,
        False,
    ]
