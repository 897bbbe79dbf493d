"""Hermetic stand-ins for unit tests only (integration tests use the real Kafka and MQTT)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeMessage:
    """What a confluent-kafka ``Message`` offers the consumers, for records made up in tests."""

    _topic: str
    _key: bytes | None
    _value: bytes | None
    _headers: list[tuple[str, bytes]] = field(default_factory=list)
    _partition: int = 0
    _offset: int = 0

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None
