"""The local development stack: real Kafka (KRaft, jars from Maven) and real Mosquitto."""

from fleetlink.stack.local import ComponentStatus, LocalStack

__all__ = ["ComponentStatus", "LocalStack"]
