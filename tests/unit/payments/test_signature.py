"""Webhook signatures: Stripe's scheme, rotation, replay windows, and hostile headers."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetlink.payments.signature import SignatureInvalid, sign_header, verify
from tests.support.strategies import PROPERTY

BODY = b'{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}'
OLD, NEW = "whsec_old", "whsec_new"
T = 1_764_000_000
TOLERANCE = 300


def reason_of(payload: bytes, header: str | None, secrets: list[str], now: float = T) -> str:
    with pytest.raises(SignatureInvalid) as caught:
        verify(payload, header, secrets, now_s=now, tolerance_s=TOLERANCE)
    return caught.value.reason


def test_a_signed_body_verifies_and_gives_its_timestamp() -> None:
    header = sign_header(BODY, [NEW], T)
    assert verify(BODY, header, [NEW], now_s=T + 10, tolerance_s=TOLERANCE) == T


def test_the_header_is_stripes_format() -> None:
    # computed independently of the module: HMAC-SHA256 over "<t>." + body, hex
    expected = hmac.new(NEW.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign_header(BODY, [NEW], T) == f"t={T},v1={expected}"


def test_a_tampered_body_or_a_wrong_secret_fails() -> None:
    header = sign_header(BODY, [NEW], T)
    assert reason_of(BODY.replace(b"succeeded", b"failed"), header, [NEW]) == "no-match"
    assert reason_of(BODY, header, [OLD]) == "no-match"
    assert reason_of(BODY, header, []) == "no-match"


def test_a_signature_from_another_timestamp_fails() -> None:
    header = sign_header(BODY, [NEW], T).replace(f"t={T}", f"t={T + 1}")
    assert reason_of(BODY, header, [NEW]) == "no-match"


def test_stale_and_future_timestamps_fail_at_the_tolerance() -> None:
    header = sign_header(BODY, [NEW], T)
    assert verify(BODY, header, [NEW], now_s=T + TOLERANCE, tolerance_s=TOLERANCE) == T
    assert verify(BODY, header, [NEW], now_s=T - TOLERANCE, tolerance_s=TOLERANCE) == T
    assert reason_of(BODY, header, [NEW], now=T + TOLERANCE + 1) == "stale"
    assert reason_of(BODY, header, [NEW], now=T - TOLERANCE - 1) == "future"


def test_rotation_two_signatures_and_any_secret_of_the_receiver() -> None:
    header = sign_header(BODY, [OLD, NEW], T)
    assert header.count("v1=") == 2
    for receiver in ([NEW], [OLD], [NEW, OLD], ["whsec_other", NEW]):
        assert verify(BODY, header, receiver, now_s=T, tolerance_s=TOLERANCE) == T
    # the sender moved on to the new secret only: a receiver holding both still accepts
    only_new = sign_header(BODY, [NEW], T)
    assert verify(BODY, only_new, [OLD, NEW], now_s=T, tolerance_s=TOLERANCE) == T


def test_other_schemes_and_spaces_are_ignored() -> None:
    v1 = sign_header(BODY, [NEW], T).split(",", 1)[1]
    header = f"t={T}, v0=deadbeef, {v1}, x=1, junk"
    assert verify(BODY, header, [NEW], now_s=T, tolerance_s=TOLERANCE) == T
    # a valid v0 is no signature at all
    assert reason_of(BODY, f"t={T},{v1.replace('v1=', 'v0=')}", [NEW]) == "malformed"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("   ", "missing"),
        ("v1=abc", "malformed"),  # no t
        ("t=,v1=abc", "malformed"),
        ("t=12a,v1=abc", "malformed"),
        ("t=-5,v1=abc", "malformed"),
        ("t=1e9,v1=abc", "malformed"),
        ("t=" + "9" * 5000 + ",v1=abc", "malformed"),  # int() would refuse it (or take long)
        (f"t={T}", "malformed"),  # no v1
        (f"t={T},v1", "malformed"),  # a name without "=" is not a signature
        (f"t={T},v1=\u00e9\u00e9", "no-match"),  # not ASCII: cannot match, and no TypeError
        (f"t={T},v1=\ud800", "no-match"),  # a lone surrogate
    ],
)
def test_malformed_headers(header: str | None, reason: str) -> None:
    assert reason_of(BODY, header, [NEW]) == reason


def test_the_message_says_why() -> None:
    with pytest.raises(SignatureInvalid, match=r"^stale: signed \d+ s ago$"):
        verify(BODY, sign_header(BODY, [NEW], T), [NEW], now_s=T + 9999, tolerance_s=TOLERANCE)
    assert isinstance(SignatureInvalid("x"), ValueError)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="no secret"):
        sign_header(BODY, [], T)


HEADERS = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.lists(
        st.tuples(st.sampled_from(["t", "v1", "v0", " t", "v1 ", "", "x"]), st.text(max_size=70)),
        max_size=4,
    ).map(lambda items: ",".join(f"{name}={value}" for name, value in items)),
    st.binary(max_size=64).map(lambda raw: f"t={T},v1=" + raw.hex()),
)


@PROPERTY
@given(payload=st.binary(max_size=200), header=HEADERS, now=st.integers(0, 2**40))
def test_verify_raises_only_signature_invalid(payload: bytes, header: str | None, now: int) -> None:
    reason = None
    try:
        verify(payload, header, [OLD, NEW], now_s=now, tolerance_s=TOLERANCE)
    except SignatureInvalid as error:
        reason = error.reason
    assert reason in {None, "missing", "malformed", "no-match", "stale", "future"}


@PROPERTY
@given(payload=st.binary(max_size=200), timestamp=st.integers(0, 10**11))
def test_any_payload_signed_verifies(payload: bytes, timestamp: int) -> None:
    header = sign_header(payload, [OLD, NEW], timestamp)
    assert verify(payload, header, [NEW], now_s=timestamp, tolerance_s=1) == timestamp
