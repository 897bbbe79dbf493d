"""The shared bottom layer: Kafka, MQTT, child processes and process survival, wrapped once."""
