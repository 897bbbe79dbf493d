"""The one way a test waits: poll a condition, fail naming what never happened."""

from __future__ import annotations

from collections.abc import Callable

from fleetlink.adapters.polling import wait_until


def eventually(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Return once ``condition()`` holds; fail the test after ``timeout`` seconds."""
    assert wait_until(condition, timeout, interval), f"no {what} in {timeout} s"
