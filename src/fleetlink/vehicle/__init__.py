"""The in-vehicle agent: what a telematics unit runs. ``state``, ``commands`` and ``outbox`` are
pure logic; ``agent`` connects them to MQTT."""
