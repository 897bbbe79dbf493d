"""The AsyncAPI 3 document of fleetlink, generated from the same msgspec models the gateway uses."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from fleetlink import __version__
from fleetlink.contracts import headers as h
from fleetlink.contracts.asyncapi_services import service_channels
from fleetlink.contracts.codec import DlqReason
from fleetlink.contracts.delivery import BOOT_PROPERTY, RESEND_PROPERTY, SEQ_PROPERTY
from fleetlink.contracts.hazards import Hazard
from fleetlink.contracts.models import (
    AuditEvent,
    Command,
    CommandCancel,
    CommandResponse,
    Delivered,
    Event,
    EventKind,
    GrantRecord,
    Presence,
    Telemetry,
    Transition,
)
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.contracts.vin import VIN_PATTERN

_SCHEMAS_REF: Final = "#/components/schemas/{name}"

_VIN_PARAMETER: Final = {"description": f"ISO 3779 VIN, matching {VIN_PATTERN}"}

# (channel id, MQTT address, message name, model, summary, extra parameters)
_MQTT_UPLINK: Final[list[tuple[str, str, str, type[msgspec.Struct], str, dict[str, Any]]]] = [
    (
        "vehicleTelemetry",
        "vehicles/{vin}/telemetry",
        "Telemetry",
        Telemetry,
        "A vehicle publishes a snapshot of VSS signals.",
        {},
    ),
    (
        "vehicleEvents",
        "vehicles/{vin}/events/{kind}",
        "Event",
        Event,
        "A vehicle reports an event.",
        {"kind": {"enum": [kind.value for kind in EventKind], "description": "event kind"}},
    ),
    (
        "vehiclePresence",
        "vehicles/{vin}/presence",
        "Presence",
        Presence,
        "Retained birth message on connect; last will on loss.",
        {},
    ),
    (
        "vehicleCommandResponses",
        "vehicles/{vin}/command-responses/{commandId}",
        "CommandResponse",
        CommandResponse,
        "A vehicle answers a command.",
        {"commandId": {"description": "the command's id"}},
    ),
]

# (channel id, Kafka topic, message name, key description)
_KAFKA_UPLINK: Final = [
    ("kafkaTelemetry", KafkaTopic.TELEMETRY, "Telemetry", "VIN"),
    ("kafkaEvents", KafkaTopic.EVENTS, "Event", "VIN"),
    ("kafkaPresence", KafkaTopic.PRESENCE, "Presence", "VIN"),
    ("kafkaCommandResponses", KafkaTopic.COMMAND_RESPONSES, "CommandResponse", "command id"),
]

_HEADER_DOCS: Final = {
    h.MESSAGE_ID: "stable message id: the vehicle's msg_id, else {vin}-{seq}-{ts}, else a hash",
    h.MQTT_TOPIC: "the MQTT topic the message came on",
    h.QOS: "MQTT QoS of the publish",
    h.EVENT_TIME: "event time (payload ts), epoch ms",
    h.INGEST_TIME: "when the gateway received it, epoch ms",
    h.CONTENT_TYPE: "MQTT 5 content type, default application/json",
    h.MAPPING: "the mapping rule that routed it",
    h.SOURCE: "mqtt or http",
    h.LATE: "1 when event time is older than the late threshold, or the vehicle resent it",
    h.REDELIVERED: "1 when MQTT flagged the publish as a duplicate",
    BOOT_PROPERTY: "the car's boot id (MQTT 5 user property of a stamped message)",
    SEQ_PROPERTY: "the message's sequence number within that boot (user property)",
    RESEND_PROPERTY: "how many times the car sent it before (user property; absent: never)",
}
_DLQ_HEADER_DOCS: Final = {
    h.DLQ_REASON: "why it was rejected: " + ", ".join(reason.value for reason in DlqReason),
    h.DLQ_DETAIL: "the validation message",
    h.DLQ_ORIGINAL_SIZE: "size of the raw payload when it was truncated",
    h.SOURCE_TOPIC: "a dead Kafka record (poison): the topic it is in",
    h.SOURCE_PARTITION: "a dead Kafka record (poison): its partition",
    h.SOURCE_OFFSET: "a dead Kafka record (poison): its offset",
}


def _headers_schema(docs: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Kafka record headers; MQTT 5 user properties are added under their names",
        "properties": {
            name: {"type": "string", "description": text} for name, text in docs.items()
        },
        "required": [h.MESSAGE_ID, h.MQTT_TOPIC, h.INGEST_TIME],
    }


def asyncapi_document() -> dict[str, Any]:
    models = [model for *_, model, _summary, _params in _MQTT_UPLINK]
    _, schemas = msgspec.json.schema_components(models, ref_template=_SCHEMAS_REF)
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel_id, address, name, model, summary, parameters in _MQTT_UPLINK:
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": _SCHEMAS_REF.format(name=model.__name__)},
        }
        channels[channel_id] = {
            "address": address,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "parameters": {"vin": _VIN_PARAMETER, **parameters},
            "servers": [{"$ref": "#/servers/mqtt"}],
            "bindings": {"mqtt": {"qos": 1}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": summary,
        }
    for channel_id, topic, name, key in _KAFKA_UPLINK:
        record = f"{name}Record"
        messages[record] = {
            "name": record,
            "title": f"{name} on Kafka",
            "contentType": "application/json",
            "summary": f"The vehicle's raw payload, key {key}, provenance in headers",
            "headers": _headers_schema(_HEADER_DOCS),
            "payload": {"$ref": _SCHEMAS_REF.format(name=name)},
            "bindings": {"kafka": {"key": {"type": "string", "description": key}}},
        }
        channels[channel_id] = {
            "address": str(topic),
            "messages": {record: {"$ref": f"#/components/messages/{record}"}},
            "servers": [{"$ref": "#/servers/kafka"}],
            "bindings": {"kafka": {"topic": str(topic)}},
        }
        operations[f"consume{name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Applications read {topic}; the gateway wrote each record once or more",
        }
    # downlink: commands to the vehicle, and the lifecycle applications follow
    command_schemas = msgspec.json.schema_components(
        [Command, Transition, CommandCancel, GrantRecord, AuditEvent], ref_template=_SCHEMAS_REF
    )[1]
    schemas.update(command_schemas)
    messages["Command"] = {
        "name": "Command",
        "title": "Command",
        "summary": "An order for the vehicle, valid until expires_at (MQTT 5 message expiry too)",
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMAS_REF.format(name="Command")},
    }
    channels["vehicleCommands"] = {
        "address": "vehicles/{vin}/commands/{commandId}",
        "messages": {"Command": {"$ref": "#/components/messages/Command"}},
        "parameters": {"vin": _VIN_PARAMETER, "commandId": {"description": "the command's id"}},
        "servers": [{"$ref": "#/servers/mqtt"}],
        "bindings": {"mqtt": {"qos": 1}},
    }
    operations["receiveCommand"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/vehicleCommands"},
        "summary": "The vehicle executes a command at most once and never after it expired.",
    }
    schemas.update(msgspec.json.schema_components([Delivered], ref_template=_SCHEMAS_REF)[1])
    messages["Delivered"] = {
        "name": "Delivered",
        "title": "Delivered",
        "summary": "Which of the car's stamped messages (user properties fl-boot, fl-seq) are "
        "durably in Kafka; the car drops a message only then",
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMAS_REF.format(name="Delivered")},
    }
    channels["vehicleDelivered"] = {
        "address": "vehicles/{vin}/delivered",
        "messages": {"Delivered": {"$ref": "#/components/messages/Delivered"}},
        "parameters": {"vin": _VIN_PARAMETER},
        "servers": [{"$ref": "#/servers/mqtt"}],
        "bindings": {"mqtt": {"qos": 0}},
    }
    operations["receiveDelivered"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/vehicleDelivered"},
        "summary": "The gateway worker that wrote a car's messages confirms them, batched, "
        "at QoS 0 (a lost confirmation costs a resend, never data); a car reads only its own",
    }
    schemas.update(msgspec.json.schema_components([Hazard], ref_template=_SCHEMAS_REF)[1])
    messages["Hazard"] = {
        "name": "Hazard",
        "title": "Local hazard",
        "summary": "confirmed | updated | cleared, with its ETSI DENM cause; retained on MQTT "
        "(an empty retained message withdraws it)",
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMAS_REF.format(name="Hazard")},
        "bindings": {"kafka": {"key": {"type": "string", "description": "H3 cell"}}},
    }
    channels["geoWarnings"] = {
        "address": "geo/{cell}/warnings/{hazardId}",
        "messages": {"Hazard": {"$ref": "#/components/messages/Hazard"}},
        "parameters": {
            "cell": {"description": "H3 cell, resolution 8: the hazard's own"},
            "hazardId": {"description": "the hazard's stable id"},
        },
        "servers": [{"$ref": "#/servers/mqtt"}],
        "bindings": {"mqtt": {"qos": 1, "retain": True}},
    }
    operations["receiveWarnings"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/geoWarnings"},
        "summary": "A car subscribes to geo/{cell}/warnings/+ for its cell and the ring around "
        "it; each warning expires with the hazard (MQTT 5 message expiry)",
    }
    channels["kafkaHazards"] = {
        "address": str(KafkaTopic.HAZARDS),
        "messages": {"Hazard": {"$ref": "#/components/messages/Hazard"}},
        "servers": [{"$ref": "#/servers/kafka"}],
        "bindings": {"kafka": {"topic": str(KafkaTopic.HAZARDS)}},
    }
    operations["consumeHazards"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/kafkaHazards"},
        "summary": "The hazards app writes these; the first gateway worker tells the cars",
    }
    messages["CommandStatus"] = {
        "name": "CommandStatus",
        "title": "Command lifecycle transition",
        "summary": "queued -> sent -> delivered -> succeeded | failed | rejected | expired | "
        "cancelled | unknown",
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMAS_REF.format(name="Transition")},
        "bindings": {"kafka": {"key": {"type": "string", "description": "command id"}}},
    }
    channels["kafkaCommandStatus"] = {
        "address": str(KafkaTopic.COMMAND_STATUS),
        "messages": {"CommandStatus": {"$ref": "#/components/messages/CommandStatus"}},
        "servers": [{"$ref": "#/servers/kafka"}],
        "bindings": {"kafka": {"topic": str(KafkaTopic.COMMAND_STATUS)}},
    }
    operations["consumeCommandStatus"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/kafkaCommandStatus"},
        "summary": "Applications follow their commands (compacted: the latest state per id)",
    }
    messages["CommandRequest"] = {
        "name": "CommandRequest",
        "title": "Command request",
        "summary": "A command for the vehicle named by the key; header fl.kind: command",
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMAS_REF.format(name="Command")},
        "bindings": {"kafka": {"key": {"type": "string", "description": "VIN"}}},
    }
    messages["CommandCancel"] = {
        "name": "CommandCancel",
        "title": "Cancel request",
        "summary": "Withdraw a command the platform still holds; header fl.kind: cancel",
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMAS_REF.format(name="CommandCancel")},
        "bindings": {"kafka": {"key": {"type": "string", "description": "VIN"}}},
    }
    channels["kafkaCommands"] = {
        "address": str(KafkaTopic.COMMANDS),
        "messages": {
            "CommandRequest": {"$ref": "#/components/messages/CommandRequest"},
            "CommandCancel": {"$ref": "#/components/messages/CommandCancel"},
        },
        "servers": [{"$ref": "#/servers/kafka"}],
        "bindings": {"kafka": {"topic": str(KafkaTopic.COMMANDS)}},
    }
    operations["produceCommands"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/kafkaCommands"},
        "summary": "Applications (and the REST API) send and cancel commands; key VIN, so a "
        "cancel follows its command in one partition",
    }
    channels["kafkaCommandDispatch"] = {
        "address": str(KafkaTopic.COMMAND_DISPATCH),
        "messages": {"CommandStatus": {"$ref": "#/components/messages/CommandStatus"}},
        "servers": [{"$ref": "#/servers/kafka"}],
        "bindings": {"kafka": {"topic": str(KafkaTopic.COMMAND_DISPATCH)}},
    }
    operations["consumeCommandDispatch"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/kafkaCommandDispatch"},
        "summary": "The tracker reads the downlink's reports: sent, cancelled, expired",
    }
    for channel_id, topic, name, model, key, summary in (
        ("kafkaGrants", KafkaTopic.GRANTS, "GrantRecord", GrantRecord, "grant id",
         "Digital keys as issued (Ed25519-signed token) and revoked; compacted"),
        ("kafkaAudit", KafkaTopic.AUDIT, "AuditEvent", AuditEvent, "VIN",
         "Who did what to which car: keys issued and revoked, key uses, refused requests"),
    ):  # fmt: skip
        messages[name] = {
            "name": name,
            "title": name,
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": _SCHEMAS_REF.format(name=model.__name__)},
            "bindings": {"kafka": {"key": {"type": "string", "description": key}}},
        }
        channels[channel_id] = {
            "address": str(topic),
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "servers": [{"$ref": "#/servers/kafka"}],
            "bindings": {"kafka": {"topic": str(topic)}},
        }
        operations[f"consume{name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": "The API writes these; its read model and auditors follow them",
        }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "Rejected message",
        "contentType": "application/octet-stream",
        "summary": "The raw bytes of a message that failed validation, with the reason",
        "headers": _headers_schema(_HEADER_DOCS | _DLQ_HEADER_DOCS),
        "payload": {"type": "string", "format": "binary"},
    }
    channels["kafkaDeadLetters"] = {
        "address": str(KafkaTopic.DLQ),
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        "servers": [{"$ref": "#/servers/kafka"}],
        "bindings": {"kafka": {"topic": str(KafkaTopic.DLQ)}},
    }
    operations["consumeDeadLetters"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/kafkaDeadLetters"},
        "summary": "Operators inspect and replay rejected messages",
    }
    more = service_channels(_SCHEMAS_REF)
    for section, added in zip((schemas, messages, channels, operations), more, strict=True):
        section.update(added)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "fleetlink",
            "version": __version__,
            "description": "Vehicle fleets to Apache Kafka over MQTT: uplink and commands.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "mqtt": {"host": "localhost:1883", "protocol": "mqtt", "protocolVersion": "5"},
            "kafka": {"host": "localhost:9092", "protocol": "kafka"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
