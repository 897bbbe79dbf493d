"""Reading Kafka record headers."""

from __future__ import annotations

from collections.abc import Sequence


def header_value(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> bytes | None:
    """The value of the first header called ``name``, or None."""
    for key, value in headers or ():
        if key == name:
            return value
    return None
