"""The in-vehicle agent: what a telematics unit runs. ``state``, ``commands``, ``outbox``,
``geo``, ``ota_rules`` and ``flash`` are logic without a network; ``agent`` connects them to
MQTT and ``ota`` downloads and installs software updates over HTTP."""
