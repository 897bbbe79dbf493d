"""The gateway: MQTT uplink into Kafka (PUBACK after the Kafka ack), and the downlink it hosts.

``acks`` and ``confirm`` are pure logic; ``worker`` is the process (routing is in ``ingest``);
``vehicle_link`` is the one place that publishes to cars.
"""
