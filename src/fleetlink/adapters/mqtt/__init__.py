"""MQTT, wrapped once (paho-mqtt 2, MQTT 5): the platform's client (``client``), the wire helpers
the car's code uses too (``wire``) and the one publisher to cars (``vehicle_link``)."""
