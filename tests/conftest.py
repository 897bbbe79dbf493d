"""Shared test set-up: tests never read the developer's own fleetlink settings."""

import os

for _name in [name for name in os.environ if name.startswith("FLEETLINK_")]:
    del os.environ[_name]
