"""Kafka adapters (confluent-kafka): admin, and later producers and consumers."""
