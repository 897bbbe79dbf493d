"""MQTT, wrapped once (paho-mqtt 2, MQTT 5): the platform's client (``client``) and the wire helpers
the car's code uses too (``wire``)."""
