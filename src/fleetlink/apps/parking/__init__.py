"""The free-parking finder: fleet.events (and telemetry) -> fleet.parking, and its read model."""
