"""The in-vehicle agent: what a telematics unit runs. ``state``, ``commands``, ``outbox`` and
``geo`` are pure logic; ``agent`` connects them to MQTT."""
