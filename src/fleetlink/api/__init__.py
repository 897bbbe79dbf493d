"""The HTTP API (FastAPI): ingest beside MQTT now; commands, users and the dashboard later."""
