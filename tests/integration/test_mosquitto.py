"""Publish and receive through the real Mosquitto of the local stack."""

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.contracts import MqttTopic
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.stack import mqtt_client

VIN = "WVWZZZ1JZXW000001"


def test_mqtt5_publish_then_receive_with_user_properties(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    with (
        mqtt_client(stack_config, subscribe=f"vehicles/{VIN}/#") as (_sub, inbox),
        mqtt_client(stack_config, VIN) as (publisher, _),
    ):
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = [("fw", "1.2.3")]
        for seq in range(500):
            info = publisher.publish(
                MqttTopic.telemetry(VIN), f'{{"seq":{seq}}}', qos=1, properties=properties
            )
            info.wait_for_publish(10)
        received = inbox.wait_for(500, timeout=30)
    assert [m.payload.decode() for m in received] == [f'{{"seq":{n}}}' for n in range(500)]
    assert all(m.topic == MqttTopic.telemetry(VIN) for m in received)
    assert received[0].properties.UserProperty == [("fw", "1.2.3")]
    print(f"published and received {len(received)} QoS 1 messages through Mosquitto")


def test_offline_persistent_session_keeps_more_than_the_broker_default(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    """A gateway worker down for a while must find everything queued when it comes back.

    Mosquitto's default max_queued_messages is 1000; the stack raises it, so 5000 must survive.
    """
    topic = f"vehicles/{VIN}/telemetry"
    with mqtt_client(
        stack_config,
        clean_start=True,
        session_expiry_s=300,
        subscribe=topic,
    ):
        pass  # subscribed, then gone: the broker now queues for the session
    with mqtt_client(stack_config, VIN) as (publisher, _):
        for seq in range(5000):
            publisher.publish(topic, str(seq), qos=1)
        publisher.publish(topic, "last", qos=1).wait_for_publish(30)
    with mqtt_client(stack_config, clean_start=False, session_expiry_s=0) as (
        _client,
        inbox,
    ):
        received = inbox.wait_for(5001, timeout=60)
    payloads = [m.payload.decode() for m in received]
    assert len(payloads) == 5001
    assert payloads == [str(n) for n in range(5000)] + ["last"]
