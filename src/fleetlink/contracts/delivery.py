"""End-to-end confirmation: the stamp a car puts on each message, and the ranges confirmed back.

A car that asks for confirmation stamps every message it sends with MQTT 5 user properties: its
boot id (new at every start of the agent) and a sequence number (one counter for telemetry,
events and command responses). The stamp is readable even when the payload is garbage, so dead
letters are confirmed too. The gateway worker that wrote a car's messages to Kafka tells that
car, on ``vehicles/{vin}/delivered``, which ``(boot, seq)`` ranges are now durable; the car drops
a message only then. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import msgspec

from fleetlink.contracts.topics import VEHICLES_ROOT
from fleetlink.contracts.vin import is_valid_vin

BOOT_PROPERTY: Final = "fl-boot"
SEQ_PROPERTY: Final = "fl-seq"
# how many times the car sent this message before (absent on the first send)
RESEND_PROPERTY: Final = "fl-resend"
# a CONNECT user property: the car keeps its messages until ``vehicles/{vin}/delivered`` says so
CAPABILITY_PROPERTY: Final = "fl-confirm"
CAPABILITY_VALUE: Final = "delivered/1"
_MAX_BOOT_LENGTH: Final = 64


class Stamp(msgspec.Struct, frozen=True):
    """Which car's which message: the topic's VIN, the car's boot id and the message's seq."""

    vin: str
    boot: str
    seq: int


def stamp_of(topic: str, user_properties: Sequence[tuple[str, str]]) -> Stamp | None:
    """The stamp of a message, or None when the car did not ask for confirmation (or the stamp
    is unusable: no VIN in the topic, a boot id that is too long, a seq that is not a number)."""
    if not user_properties:
        return None
    boot = seq_text = None
    for name, value in user_properties:
        if name == BOOT_PROPERTY:
            boot = value
        elif name == SEQ_PROPERTY:
            seq_text = value
    if not boot or seq_text is None or len(boot) > _MAX_BOOT_LENGTH:
        return None
    if not (seq_text.isascii() and seq_text.isdigit() and len(seq_text) < 19):
        return None
    levels = topic.split("/", 2)
    if len(levels) < 3 or levels[0] != VEHICLES_ROOT or not is_valid_vin(levels[1]):
        return None
    return Stamp(levels[1], boot, int(seq_text))


def stamp_properties(boot: str, seq: int, resends: int = 0) -> list[tuple[str, str]]:
    """The user properties a car adds to a message (``resends``: times it was sent before)."""
    properties = [(BOOT_PROPERTY, boot), (SEQ_PROPERTY, str(seq))]
    if resends:
        properties.append((RESEND_PROPERTY, str(resends)))
    return properties


def to_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged ``(first, last)`` ranges of ``seqs`` (duplicates allowed)."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges
