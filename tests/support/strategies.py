"""Hypothesis strategies for hostile input: arbitrary bytes, arbitrary JSON, and messages that
look valid (the right field names with values of any type, or real ones with bad bytes in)."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from fleetlink.contracts.models import MODELS

VIN = "WVWZZZ1JZXW000001"
NOW = 1_764_000_000_000
# the examples each property test draws
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The byte sequence that stopped the uplink: a UTF-8-encoded lone surrogate.
LONE_SURROGATE = b"\xed\xa0\x80"
BAD_UTF8 = st.sampled_from([LONE_SURROGATE, b"\xff", b"\xc3", b"\xe2\x82", b"\xf4\x90\x80\x80"])

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_VALUES = (
    JSON
    | st.integers(min_value=0, max_value=4_102_444_800_000)
    | st.sampled_from(["online", "offline", "succeeded", "queued", "sent", "flash", VIN])
    | st.dictionaries(st.sampled_from(["Vehicle.Speed", "Vehicle.Body.Trunk.Rear.IsOpen"]), JSON)
)


def _looks_like(model: type[msgspec.Struct]) -> st.SearchStrategy[dict[str, Any]]:
    names = list(msgspec.structs.fields(model))
    return st.fixed_dictionaries({}, optional={field.encode_name: FIELD_VALUES for field in names})


LOOKS_VALID = st.one_of(*(_looks_like(model) for model in MODELS.values()))

TS = st.integers(min_value=0, max_value=4_102_444_800_000)
TEXT = st.text(min_size=1, max_size=12)
VSS_PATH = st.from_regex(r"\AVehicle(\.[A-Za-z0-9_]{1,6}){1,3}\Z")
COMMAND_ID = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,20}\Z")
# Messages that pass validation as they are, one strategy per model the platform reads.
VALID_OF = dict(  # noqa: C408 - keyword names read as the models they stand for
    telemetry=st.fixed_dictionaries(
        {"ts": TS, "seq": TS, "signals": st.dictionaries(VSS_PATH, TEXT, min_size=1, max_size=3)},
        optional={"msg_id": TEXT, "vin": st.just(VIN)},
    ),
    event=st.fixed_dictionaries({"ts": TS, "seq": TS, "data": st.dictionaries(TEXT, TEXT)}),
    presence=st.fixed_dictionaries(
        {"status": st.sampled_from(["online", "offline"]), "ts": TS}, optional={"reason": TEXT}
    ),
    response=st.fixed_dictionaries(
        {"ts": TS, "status": st.sampled_from(["accepted", "succeeded", "failed", "rejected"])},
        optional={"reason": TEXT},
    ),
    command=st.fixed_dictionaries(
        {
            "command_id": COMMAND_ID,
            "name": st.sampled_from(["flash", "honk", "trunk.open", "climate"]),
            "issued_at": TS,
            "expires_at": TS,
        },
        optional={"actor": TEXT, "params": st.dictionaries(TEXT, TEXT, max_size=2)},
    ),
    transition=st.fixed_dictionaries(
        {
            "command_id": COMMAND_ID,
            "vin": st.just(VIN),
            "name": st.just("flash"),
            "state": st.sampled_from(["queued", "sent", "succeeded"]),
            "ts": TS,
        },
        optional={"reason": TEXT},
    ),
)
VALID = st.one_of(*VALID_OF.values())


@st.composite
def with_bad_bytes(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> bytes:
    """A JSON document with invalid UTF-8 spliced in somewhere, inside a string when it can:
    msgspec checks UTF-8 only in strings it decodes, so that is the hard case."""
    raw = msgspec.json.encode(draw(documents))
    quotes = [i + 1 for i, byte in enumerate(raw) if byte == ord('"')]
    at = draw(st.sampled_from(quotes) if quotes else st.integers(0, len(raw)))
    return raw[:at] + draw(BAD_UTF8) + raw[at:]


def _json_bytes(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return documents.map(msgspec.json.encode)


PAYLOADS: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=200),
    _json_bytes(JSON),
    _json_bytes(LOOKS_VALID),
    _json_bytes(VALID),
    with_bad_bytes(VALID),
    with_bad_bytes(LOOKS_VALID),
    st.just(b'{"ts":1,"seq":1,"signals":{"Vehicle.X":"' + LONE_SURROGATE + b'"}}'),
    st.just(b"[" * 5000),
    st.just(b'{"ts":1e309,"seq":1,"signals":{}}'),
)
RAW_VALUES: st.SearchStrategy[bytes | None] = st.none() | st.just(b"") | PAYLOADS
KEYS: st.SearchStrategy[bytes | None] = (
    st.none() | st.just(VIN.encode()) | st.binary(max_size=20) | BAD_UTF8
)
HEADERS = st.lists(
    st.tuples(st.sampled_from(["fl.kind", "fl.idempotency_key", "x"]), st.binary(max_size=10)),
    max_size=3,
)
