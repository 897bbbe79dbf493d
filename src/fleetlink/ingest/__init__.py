"""From an MQTT or HTTP message to a Kafka record or a dead letter: pure routing."""
