import re
from pathlib import Path

import pytest

from fleetlink.contracts import (
    KAFKA_TOPICS,
    Event,
    EventKind,
    KafkaTopic,
    MqttTopic,
    Presence,
    PresenceStatus,
    Telemetry,
    is_valid_vin,
    vss,
)
from fleetlink.contracts.asyncapi import asyncapi_document
from fleetlink.contracts.codec import UndecodableError, decode, encode
from fleetlink.contracts.schema import contract_files, json_schemas
from fleetlink.contracts.topics import Site, TopicMap, VehicleChannel, VehicleTopic, spec_of

VIN = "WVWZZZ1JZXW000001"
SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


@pytest.mark.parametrize(
    ("candidate", "valid"),
    [
        (VIN, True),
        ("1HGCM82633A004352", True),
        ("WVWZZZ1JZXW00000", False),  # 16 characters
        ("WVWZZZ1JZXW0000011", False),  # 18
        ("WVWZZZ1JZXW00000I", False),  # I is not allowed
        ("WVWZZZ1JZXW00000O", False),
        ("WVWZZZ1JZXW00000Q", False),
        ("wvwzzz1jzxw000001", False),  # lower case
        ("WVWZZZ1JZXW00000+", False),  # a topic wildcard is never a VIN
        ("WVWZZZ1JZXW00000#", False),
    ],
)
def test_vin_shape(candidate: str, valid: bool) -> None:
    assert is_valid_vin(candidate) is valid


def test_topic_builders_match_the_contract() -> None:
    assert MqttTopic.telemetry(VIN) == f"vehicles/{VIN}/telemetry"
    assert MqttTopic.event(VIN, EventKind.DTC) == f"vehicles/{VIN}/events/dtc"
    assert MqttTopic.presence(VIN) == f"vehicles/{VIN}/presence"
    assert MqttTopic.command(VIN, "c1") == f"vehicles/{VIN}/commands/c1"
    assert MqttTopic.command_response(VIN, "c1") == f"vehicles/{VIN}/command-responses/c1"
    assert MqttTopic.commands_filter(VIN) == f"vehicles/{VIN}/commands/+"
    assert MqttTopic.geo_warning("8a1fb46622dffff", "h1") == "geo/8a1fb46622dffff/warnings/h1"
    assert MqttTopic.geo_warnings_filter("8a1fb46622dffff") == "geo/8a1fb46622dffff/warnings/+"


@pytest.mark.parametrize(
    ("topic", "parsed"),
    [
        (f"vehicles/{VIN}/telemetry", VehicleTopic(VIN, VehicleChannel.TELEMETRY)),
        (f"vehicles/{VIN}/events/crash", VehicleTopic(VIN, VehicleChannel.EVENTS, "crash")),
        (f"vehicles/{VIN}/presence", VehicleTopic(VIN, VehicleChannel.PRESENCE)),
        (
            f"vehicles/{VIN}/command-responses/abc",
            VehicleTopic(VIN, VehicleChannel.COMMAND_RESPONSES, "abc"),
        ),
        (f"vehicles/{VIN}/telemetry/extra", None),
        (f"vehicles/{VIN}/events", None),
        (f"vehicles/{VIN}/events/", None),
        (f"vehicles/{VIN}/radio", None),
        ("vehicles//telemetry", None),
        (f"cars/{VIN}/telemetry", None),
        ("geo/abc/warnings", None),
    ],
)
def test_parse_vehicle_topic(topic: str, parsed: VehicleTopic | None) -> None:
    assert MqttTopic.parse_vehicle_topic(topic) == parsed


def test_every_kafka_topic_has_one_spec() -> None:
    assert sorted(spec.topic for spec in KAFKA_TOPICS) == sorted(KafkaTopic)
    compacted = {spec.topic for spec in KAFKA_TOPICS if spec.compacted}
    assert {KafkaTopic.PRESENCE, KafkaTopic.COMMAND_STATUS, KafkaTopic.ENTITLEMENTS} <= compacted
    assert KafkaTopic.TELEMETRY not in compacted
    # compacted by VIN alone, compaction would keep one feature per car
    assert spec_of(KafkaTopic.ENTITLEMENTS).key == "{vin}/{feature}"
    assert spec_of(KafkaTopic.TELEMETRY).written_at is Site.EDGE
    assert spec_of(KafkaTopic.COMMANDS).written_at is Site.CLOUD


def test_a_topic_map_names_each_contract_topic_once_and_prefixes_them_all() -> None:
    production = TopicMap()
    assert production.names() == [str(topic) for topic in KafkaTopic]
    run = production.prefixed("t1")
    assert run[KafkaTopic.DLQ] == "t1.fleet.dlq"
    assert run.prefixed("a")[KafkaTopic.DLQ] == "t1.a.fleet.dlq"
    assert run.topic_of("t1.fleet.dlq") is KafkaTopic.DLQ
    assert run.topic_of("fleet.dlq") is None
    assert run.resolve("fleet.events") == "t1.fleet.events"  # a contract topic named in settings
    assert run.resolve("diag.raw") == "diag.raw"  # any other topic is taken as it is
    renamed = TopicMap({KafkaTopic.AUDIT: "acme.audit"}).prefixed("t2")
    assert renamed[KafkaTopic.AUDIT] == "t2.acme.audit"
    assert len(set(run.names())) == len(KafkaTopic)


def test_telemetry_round_trip() -> None:
    raw = (
        b'{"ts":1764000000000,"seq":7,"signals":{"Vehicle.Speed":42.5,'
        b'"Vehicle.Body.Trunk.Rear.IsOpen":false,"Vehicle.OBD.DTCList":["P0300"]},'
        b'"vin":"' + VIN.encode() + b'","from_a_newer_agent":1}'
    )
    telemetry = decode(Telemetry, raw)
    assert telemetry.signals[vss.SPEED] == 42.5
    assert telemetry.signals[vss.TRUNK_REAR_IS_OPEN] is False
    assert telemetry.vin == VIN
    again = decode(Telemetry, encode(telemetry))
    assert again == telemetry
    assert b"msg_id" not in encode(telemetry)  # unset optionals are omitted


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"not json", "malformed"),
        (b'{"seq":1,"signals":{}}', "missing required field `ts`"),
        (b'{"ts":1,"signals":{}}', "missing required field `seq`"),
        (b'{"ts":1,"seq":1}', "missing required field `signals`"),
        (b'{"ts":-1,"seq":1,"signals":{}}', "$.ts"),
        (b'{"ts":1764000000000000,"seq":1,"signals":{}}', "$.ts"),  # microseconds
        (b'{"ts":1,"seq":-1,"signals":{}}', "$.seq"),
        (b'{"ts":1,"seq":1,"signals":{"Speed":1}}', "$.signals"),
        (b'{"ts":1,"seq":1,"signals":{"Vehicle.Speed":{"v":1}}}', "$.signals"),
        (b'{"ts":1,"seq":1,"signals":{},"vin":"SHORT"}', "$.vin"),
        (b'{"ts":"now","seq":1,"signals":{}}', "$.ts"),
    ],
)
def test_invalid_telemetry_is_refused_with_a_reason(raw: bytes, error: str) -> None:
    with pytest.raises(UndecodableError) as caught:
        decode(Telemetry, raw)
    assert error in str(caught.value)


def test_event_and_presence_models() -> None:
    event = decode(
        Event, b'{"ts":5,"seq":1,"data":{"code":"P0301"},"latitude":52.5,"longitude":13.4}'
    )
    assert event.data == {"code": "P0301"}
    with pytest.raises(UndecodableError, match=r"schema: .*\$.latitude"):
        decode(Event, b'{"ts":5,"seq":1,"latitude":91}')
    presence = decode(Presence, b'{"status":"offline","ts":9,"reason":"last-will"}')
    assert presence.status is PresenceStatus.OFFLINE
    with pytest.raises(UndecodableError, match=r"schema: .*\$.status"):
        decode(Presence, b'{"status":"sleeping","ts":9}')
    assert {kind.value for kind in EventKind} >= {"harsh-braking", "dtc", "parking-gap", "crash"}


def test_json_schemas_describe_the_constraints() -> None:
    schemas = json_schemas()
    telemetry = schemas["telemetry"]["$defs"]["Telemetry"]
    assert telemetry["required"] == ["ts", "seq", "signals"]
    assert telemetry["properties"]["signals"]["propertyNames"]["pattern"].startswith("^Vehicle")
    assert set(schemas) == {
        "telemetry",
        "event",
        "presence",
        "command-response",
        "command",
        "command-status",
        "command-cancel",
        "grant",
        "grant-record",
        "audit-event",
        "delivered",
        "tick",
        "hazard",
        "parking-cell",
        "vehicle-state",
        "trip",
        "geofence",
        "geofence-event",
        "replication-alert",
        "payment-record",
        "purchase",
        "entitlement",
        "campaign-request",
        "campaign",
        "campaign-vehicle",
        "software-report",
    }
    spec = schemas["campaign-request"]["$defs"]["CampaignSpec"]
    assert spec["properties"]["error_threshold_pct"]["maximum"] == 100
    circle = schemas["geofence"]["$defs"]["FenceCircle"]
    assert circle["properties"]["radius_m"]["minimum"] == 50
    cell = schemas["parking-cell"]["$defs"]["ParkingCell"]
    assert set(cell["required"]) >= {"cell", "ts", "spots", "lifetime_s"}
    grant = schemas["grant"]["$defs"]["Grant"]
    assert grant["properties"]["max_uses"]["minimum"] == 1
    assert grant["properties"]["vin"]["pattern"].startswith("^[A-HJ-NPR-Z0-9]")


def test_checked_in_contract_files_are_current() -> None:
    files = contract_files()
    assert "asyncapi.json" in files
    for name, text in files.items():
        path = SCHEMAS_DIR / name
        assert path.is_file(), f"{path} missing: run `make schemas`"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `make schemas`"


def test_asyncapi_document_is_consistent() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"

    def resolve(ref: str) -> object:
        node: object = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict), ref
            assert part in node, f"dangling reference {ref}"
            node = node[part]
        return node

    for channel in document["channels"].values():
        for message in channel["messages"].values():
            resolve(message["$ref"])
        for server in channel["servers"]:
            resolve(server["$ref"])
        for parameter in re.findall(r"{(\w+)}", channel["address"]):
            assert parameter in channel["parameters"]
    for operation in document["operations"].values():
        assert operation["action"] in ("send", "receive")
        resolve(operation["channel"]["$ref"])
    for message in document["components"]["messages"].values():
        if "$ref" in message["payload"]:
            resolve(message["payload"]["$ref"])
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {"vehicles/{vin}/telemetry", "fleet.telemetry", "fleet.dlq"} <= addresses
