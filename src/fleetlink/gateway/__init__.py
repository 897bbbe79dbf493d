"""The gateway: MQTT uplink into Kafka (PUBACK after the Kafka ack); it hosts the downlink.

``acks`` and ``confirm`` are pure logic; ``worker`` is the process (routing is in ``ingest``,
the downlink in ``commands``, the one publisher to cars in ``adapters.mqtt.vehicle_link``).
"""
