"""What the benchmarks share: percentiles and the CPU time of processes."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from fleetlink.adapters.runner import child_pids

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def exit_cleanly_on_sigterm() -> None:
    """``kill PID`` runs the benchmark's ``finally`` blocks, which stop what it started."""
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))


def with_children(pid: int) -> list[int]:
    """``pid`` and its child processes (a supervisor and what it runs)."""
    return [pid, *child_pids(pid)]
