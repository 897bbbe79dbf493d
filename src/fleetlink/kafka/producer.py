"""Producer settings for records that must not be lost or duplicated by the producer itself."""

from __future__ import annotations

from collections.abc import Mapping


def reliable_producer_config(
    client_config: Mapping[str, str],
    *,
    linger_ms: int,
    compression: str,
    message_timeout_ms: int,
    queue_max_messages: int = 100_000,
) -> dict[str, str | int | bool]:
    """Idempotent, ``acks=all`` producer; ``message_timeout_ms=0`` retries until Kafka is back."""
    return {
        **client_config,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,
        "batch.num.messages": 10_000,
        "compression.type": compression,
        "message.timeout.ms": message_timeout_ms,
        "queue.buffering.max.messages": queue_max_messages,
        "socket.nagle.disable": True,
    }
