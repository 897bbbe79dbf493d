"""Kafka, wrapped once (confluent-kafka): the client factory, admin, whole-topic readers, async
deliveries, dedup by message id and the consumers' poison guard."""
