"""Platform users and their roles: who may read or command which car through the API.

The registry is one JSON file, written atomically and re-read when it changes, so ``fleetlink
users add`` takes effect in a running API without a restart.
"""

from __future__ import annotations

import re
import threading
from enum import StrEnum
from pathlib import Path

import msgspec

from fleetlink.contracts.vin import is_valid_vin
from fleetlink.errors import FleetlinkError

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


class UserRole(StrEnum):
    FLEET_ADMIN = "fleet-admin"  # every car, every command, users' keys
    OWNER = "owner"  # their own cars; grants digital keys for them
    SERVICE = "service"  # a delivery company: only what a digital key allows
    VIEWER = "viewer"  # reads everything, commands nothing
    VEHICLE = "vehicle"  # a car sending data over HTTP (ingest): named by its VIN


class User(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    role: UserRole
    vins: list[str] = []  # an owner's cars
    disabled: bool = False


class _RegistryFile(msgspec.Struct):
    users: dict[str, User] = {}


class UserError(FleetlinkError):
    """A user that cannot be registered as asked; the message says why."""


def validate_user(user: User) -> None:
    if user.role is UserRole.VEHICLE:
        if not is_valid_vin(user.name):
            raise UserError(f"a vehicle user is named by its VIN; {user.name!r} is not one")
    elif not _USER_NAME.fullmatch(user.name):
        raise UserError(f"{user.name!r} is not a user name: letters, digits and . _ @ -")
    bad = [vin for vin in user.vins if not is_valid_vin(vin)]
    if bad:
        raise UserError(f"not a VIN: {', '.join(bad)}")
    if user.vins and user.role is not UserRole.OWNER:
        raise UserError("only an owner has cars of their own (--vin)")


class UserRegistry:
    """The users file; reads are cached until the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}

    def get(self, name: str) -> User | None:
        return self._load().get(name)

    def all(self) -> list[User]:
        return sorted(self._load().values(), key=lambda user: user.name)

    def put(self, user: User) -> None:
        """Add or replace ``user`` (atomic write: a running API never reads half a file)."""
        validate_user(user)
        with self._lock:
            users = dict(self._read())
            users[user.name] = user
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.tmp")
            temporary.write_bytes(msgspec.json.format(msgspec.json.encode(_RegistryFile(users))))
            temporary.chmod(0o600)
            temporary.replace(self.path)
            self._stamp = None

    def _load(self) -> dict[str, User]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                return {}
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._users, self._stamp = self._read(), stamp
            return self._users

    def _read(self) -> dict[str, User]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            return msgspec.json.decode(data, type=_RegistryFile).users
        except msgspec.DecodeError as error:
            raise UserError(f"{self.path} is not a valid users file: {error}") from None
