"""MQTT adapters (paho-mqtt 2, MQTT 5)."""
