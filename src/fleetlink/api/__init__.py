"""The HTTP API (FastAPI): ingest beside MQTT, remote commands, digital keys, vehicles."""
