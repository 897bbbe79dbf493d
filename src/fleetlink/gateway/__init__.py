"""The gateway: MQTT uplink into Kafka (ack after the Kafka ack), workers and their supervisor.

``routing`` and ``acks`` are pure core logic; ``worker`` and ``supervisor`` are processes.
"""
