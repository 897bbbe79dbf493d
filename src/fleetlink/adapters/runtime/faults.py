"""A test-only fault hook: crash the handling thread on an input carrying a marker.

Off unless ``faults.crash_on`` is set. Tests set it to prove the path a real crash takes: the
thread dies, the watchdog ends the process, its supervisor starts it again, the input comes
back, and the poison journal turns it into a dead letter after a few attempts.
"""

from __future__ import annotations


class InjectedFaultError(RuntimeError):
    """Raised on purpose by ``FaultHook``; never caught by fleetlink."""


class FaultHook:
    def __init__(self, crash_on: str | None) -> None:
        self._marker = crash_on.encode() if crash_on else None

    def check(self, data: bytes | None) -> None:
        if self._marker is not None and data and self._marker in data:
            raise InjectedFaultError(f"faults.crash_on matched {self._marker!r}")
