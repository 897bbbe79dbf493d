"""The gateway's telemetry decoder gives the contract decoder's verdict on any bytes: the same
telemetry, or the same dead-letter reason and detail."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from fleetlink.contracts.codec import UndecodableError, decode_with
from fleetlink.contracts.models import Telemetry
from fleetlink.ingest.telemetry import TelemetryDecoder
from tests.support.strategies import (
    PROPERTY,
    RAW_VALUES,
    TS,
    VALID_OF,
    VSS_PATH,
    with_bad_bytes,
)

CONTRACT = msgspec.json.Decoder(Telemetry)
# paths a fleet may send, some just off the contract's pattern
PATHS = VSS_PATH | st.sampled_from(
    ["Vehicle", "Vehicle.", "vehicle.Speed", "Vehicle.Speed\n", "Vehicle.Sp eed", "Vehicle..X"]
)
SIGNAL_VALUES = st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
TELEMETRY_LIKE = st.fixed_dictionaries(
    {"ts": TS, "seq": TS, "signals": st.dictionaries(PATHS, SIGNAL_VALUES, max_size=4)},
    optional={
        "vin": st.just("WVWZZZ1JZXW000001") | st.text(max_size=17),
        "resent": st.booleans(),
        "note": st.text(max_size=8),  # not in the contract: ignored, but must be UTF-8 too
    },
)


def verdict(decode: Any, raw: bytes | None) -> tuple[str, Any]:
    try:
        return "record", msgspec.to_builtins(decode(raw))
    except UndecodableError as error:
        return "dead-letter", (error.reason, error.detail)


# one decoder across examples: the paths it remembered as valid must not change a verdict
SHARED = TelemetryDecoder()


@PROPERTY
@given(RAW_VALUES | VALID_OF["telemetry"].map(msgspec.json.encode))
def test_any_bytes_get_the_contracts_verdict(raw: bytes | None) -> None:
    assert verdict(SHARED, raw) == verdict(lambda r: decode_with(CONTRACT, r), raw)


@PROPERTY
@given(TELEMETRY_LIKE.map(msgspec.json.encode) | with_bad_bytes(TELEMETRY_LIKE))
def test_telemetry_with_paths_just_off_or_bad_bytes_gets_the_contracts_verdict(raw: bytes) -> None:
    assert verdict(SHARED, raw) == verdict(lambda r: decode_with(CONTRACT, r), raw)


def test_a_path_off_the_pattern_is_refused_after_valid_ones_were_learnt() -> None:
    decoder = TelemetryDecoder()
    good = b'{"ts":1,"seq":1,"signals":{"Vehicle.Speed":1}}'
    assert decoder(good).signals == {"Vehicle.Speed": 1}
    bad = b'{"ts":1,"seq":2,"signals":{"Vehicle.Speed":1,"Vehicle.Speed.":2}}'
    kind, (reason, detail) = verdict(decoder, bad)
    assert (kind, reason.value) == ("dead-letter", "schema")
    assert "signals" in detail
