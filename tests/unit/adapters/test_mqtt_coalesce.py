"""Queued MQTT packets joined into one write: the same bytes in the same order, and the packets
paho must act on once written (QoS 0 PUBLISH, DISCONNECT, one partly written) left alone."""

from __future__ import annotations

import itertools

import paho.mqtt.client as mqtt
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from fleetlink.adapters.mqtt.client import FastMqttClient

KINDS = [
    (mqtt.PUBLISH | 0x02, 1),  # QoS 1
    (mqtt.PUBLISH, 0),  # QoS 0: reports itself published when written
    (mqtt.PUBACK, 0),
    (mqtt.SUBSCRIBE | 0x02, 0),
    (mqtt.PINGREQ, 0),
    (mqtt.DISCONNECT, 0),
]


def client_with(queued: list[tuple[int, int, bytes]], first_pos: int = 0) -> FastMqttClient:
    client = FastMqttClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5)
    for index, (command, qos, data) in enumerate(queued):
        pos = first_pos if index == 0 else 0
        client._out_packet.append(
            {"command": command, "mid": index, "qos": qos, "pos": pos,
             "to_process": len(data) - pos, "packet": data, "info": None}
        )  # fmt: skip
    return client


def must_stay(command: int, qos: int) -> bool:
    kind = command & 0xF0
    return kind == mqtt.DISCONNECT or (kind == mqtt.PUBLISH and qos == 0)


@given(
    st.lists(
        st.tuples(st.sampled_from(KINDS), st.binary(min_size=1, max_size=20)),
        min_size=0,
        max_size=12,
    ),
    st.integers(min_value=0, max_value=1),
)
def test_the_bytes_and_their_order_are_kept_and_special_packets_stay_alone(
    packets: list[tuple[tuple[int, int], bytes]], first_pos: int
) -> None:
    queued = [(command, qos, data) for (command, qos), data in packets]
    client = client_with(queued, first_pos)
    before = [p["packet"][p["pos"] :] for p in client._out_packet]
    special = [p for p in client._out_packet if must_stay(p["command"], p["qos"])]
    partly = list(client._out_packet)[:1] if first_pos and queued else []
    client.coalesce_queued()
    after = list(client._out_packet)
    assert b"".join(p["packet"][p["pos"] :] for p in after) == b"".join(before)
    for packet in special + partly:
        assert any(packet is p for p in after)  # the very entry, untouched
    plain = [p for p in after if not any(p is s for s in special + partly)]
    if len(queued) >= 2:
        for left, right in itertools.pairwise(after):
            assert not (any(left is p for p in plain) and any(right is p for p in plain))


def test_a_command_answer_burst_becomes_one_write() -> None:
    client = client_with(
        [
            (mqtt.PUBACK, 0, b"\x40\x02\x00\x01"),
            (mqtt.PUBLISH | 0x02, 1, b"accepted"),
            (mqtt.PUBLISH | 0x02, 1, b"succeeded"),
            (mqtt.PUBLISH | 0x02, 1, b"telemetry"),
        ]
    )
    client.coalesce_queued()
    assert [p["packet"] for p in client._out_packet] == [
        b"\x40\x02\x00\x01acceptedsucceededtelemetry"
    ]
