"""Who may see or do what through the API: one table of rules, checked by every endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from fleetlink.security.users import User, UserRole


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    name: str
    role: UserRole
    vins: frozenset[str]

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(user.name, user.role, frozenset(user.vins))

    @property
    def sees_everything(self) -> bool:
        return self.role in (UserRole.FLEET_ADMIN, UserRole.VIEWER)

    def owns(self, vin: str) -> bool:
        return self.role is UserRole.OWNER and vin in self.vins

    def may_read_vehicle(self, vin: str) -> bool:
        return self.sees_everything or self.owns(vin)

    @property
    def may_read_hazards(self) -> bool:
        """Hazards name no car: every road user, and everyone who serves them, may know them."""
        return self.role in tuple(UserRole)

    @property
    def may_read_parking(self) -> bool:
        """Free spots name no car (nor who saw them): every role may know them."""
        return self.role in tuple(UserRole)

    def may_read_command(self, vin: str, actor: str | None) -> bool:
        """A service sees the commands it sent, nothing else of the car."""
        return self.may_read_vehicle(vin) or (actor is not None and actor == self.name)

    def may_cancel(self, vin: str, actor: str | None) -> bool:
        if self.role is UserRole.VIEWER:
            return False
        return self.role is UserRole.FLEET_ADMIN or self.owns(vin) or actor == self.name

    def command_refusal(self, vin: str, with_grant: bool) -> str | None:
        """Why this caller may not command ``vin`` (without the key checks), or None."""
        if self.role is UserRole.FLEET_ADMIN or self.owns(vin):
            return None
        if self.role is UserRole.SERVICE:
            return None if with_grant else "a service commands a car only with a digital key"
        if self.role is UserRole.OWNER:
            return f"{vin} is not one of your vehicles"
        return f"the {self.role.value} role sends no commands"

    def may_grant(self, vin: str) -> bool:
        return self.role is UserRole.FLEET_ADMIN or self.owns(vin)

    @property
    def may_read_campaigns(self) -> bool:
        """Campaigns and released images concern the whole fleet: whoever sees every car."""
        return self.sees_everything

    @property
    def may_run_campaigns(self) -> bool:
        """Creating, approving and steering rollouts (and reading any image's bytes)."""
        return self.role is UserRole.FLEET_ADMIN
