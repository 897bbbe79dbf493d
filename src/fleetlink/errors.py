"""Errors a user can act on: the CLI prints them as one line, never as a traceback."""


class FleetlinkError(Exception):
    """Base of every error that carries a message meant for the user."""


class ConfigError(FleetlinkError):
    """A configuration value is missing or invalid; the message names the key."""


class MissingPrerequisiteError(FleetlinkError):
    """A program fleetlink needs (Java, Maven, Mosquitto) is not installed."""


class StackError(FleetlinkError):
    """The local stack could not be started, reached or stopped."""
