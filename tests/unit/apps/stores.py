"""The key-value store the apps' pure logic is given in tests: Quix's state, without Quix."""

from __future__ import annotations

import json
from typing import Any


class JsonStore:
    """A store that keeps values as JSON, as Quix's state does: a change not set is lost."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.data[key]) if key in self.data else default

    def set(self, key: str, value: Any) -> None:
        self.data[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.data.pop(key, None)
