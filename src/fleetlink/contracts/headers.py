"""Kafka record headers the gateway writes: the record's provenance beside its raw payload.

Our own headers start with ``fl.``; MQTT 5 user properties are copied under their own names,
except that one which would collide with ours is renamed with the ``user.`` prefix.
"""

from typing import Final

MESSAGE_ID: Final = "fl.msg_id"
MQTT_TOPIC: Final = "fl.mqtt_topic"
QOS: Final = "fl.qos"
EVENT_TIME: Final = "fl.event_time"  # epoch ms, from the vehicle's "ts"
INGEST_TIME: Final = "fl.ingest_time"  # epoch ms, when the gateway received the message
CONTENT_TYPE: Final = "content-type"
MAPPING: Final = "fl.mapping"  # name of the mapping rule that routed the message
LATE: Final = "fl.late"  # "1" when event time is older than the late threshold at ingest
REDELIVERED: Final = "fl.redelivered"  # "1" when MQTT marked the PUBLISH as a duplicate (DUP)
SOURCE: Final = "fl.source"  # "mqtt" or "http"
RECORD_KIND: Final = "fl.kind"  # on fleet.commands: "command" (or absent) or "cancel"
IDEMPOTENCY_KEY: Final = "fl.idempotency_key"  # on fleet.commands, as the client gave it
DLQ_REASON: Final = "fl.dlq_reason"
DLQ_DETAIL: Final = "fl.dlq_detail"
DLQ_ORIGINAL_SIZE: Final = "fl.dlq_original_size"  # set when the raw payload was truncated
# a dead letter of a Kafka record (poison): where the record is
SOURCE_TOPIC: Final = "fl.source_topic"
SOURCE_PARTITION: Final = "fl.source_partition"
SOURCE_OFFSET: Final = "fl.source_offset"

RESERVED_PREFIX: Final = "fl."
USER_PROPERTY_RENAME_PREFIX: Final = "user."


def user_property_header(name: str) -> str:
    """The header name of an MQTT 5 user property: its own, unless it would shadow ours."""
    if name.startswith(RESERVED_PREFIX) or name == CONTENT_TYPE:
        return USER_PROPERTY_RENAME_PREFIX + name
    return name
