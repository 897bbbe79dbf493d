"""The local development stack: real Kafka (KRaft, jars from Maven) and real Mosquitto."""

from fleetlink.stack.local import LocalStack
from fleetlink.stack.status import ComponentStatus, stack_status

__all__ = ["ComponentStatus", "LocalStack", "stack_status"]
