"""The gateway's telemetry check: the contract's decoder beside the gateway's, per message.

Decodes the same 20,000 flood telemetry messages (8 signals each, 1,000 cars) with
``msgspec.json.Decoder(Telemetry)`` through ``decode_with`` (the baseline: the contract's regex
on every signal path) and with ``ingest.telemetry.TelemetryDecoder`` (each distinct path matched
once), in one process, alternating, and prints the median of ``--repeat`` rounds.

    .venv/bin/python bench/routing_costs.py --repeat 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import msgspec

from fleetlink.contracts.codec import decode_with
from fleetlink.contracts.models import Telemetry
from fleetlink.ingest.telemetry import TelemetryDecoder
from fleetlink.sim.flood import telemetry_payload


def per_message_us(decode: Callable[[bytes], object], messages: list[bytes]) -> float:
    started = time.perf_counter()
    for message in messages:
        decode(message)
    return (time.perf_counter() - started) / len(messages) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(1)
    messages = [
        telemetry_payload(f"FLT{n % 1000:014d}", n, 1_765_000_000_000, rng)
        for n in range(args.messages)
    ]
    contract = msgspec.json.Decoder(Telemetry)
    gateway = TelemetryDecoder()
    rounds = [
        (
            per_message_us(lambda raw: decode_with(contract, raw), messages),
            per_message_us(gateway, messages),
        )
        for _ in range(args.repeat)
    ]
    baseline = statistics.median(r[0] for r in rounds)
    ours = statistics.median(r[1] for r in rounds)
    print(f"contract decoder (baseline): {baseline:5.1f} us per message")
    print(f"gateway's TelemetryDecoder:  {ours:5.1f} us per message ({ours / baseline:.0%})")


if __name__ == "__main__":
    main()
