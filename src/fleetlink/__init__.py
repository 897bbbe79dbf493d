"""fleetlink: vehicle fleets to Apache Kafka over MQTT."""

__version__ = "0.1.0"
