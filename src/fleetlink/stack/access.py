"""Who may connect to the local stack's broker: identities, passwords, revocations, the ACL.

Every change is written to the PKI directory and the ACL file, and a running Mosquitto reloads
them before the call returns.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from fleetlink.adapters import runner
from fleetlink.adapters.polling import wait_until
from fleetlink.errors import StackError
from fleetlink.security.broker_acl import acl_text
from fleetlink.security.pki import Identity, Revocation, Role
from fleetlink.stack.ports import LOOPBACK
from fleetlink.stack.probes import mqtt_answers

if TYPE_CHECKING:
    from fleetlink.stack.local import LocalStack


def _count_reloads(mosquitto_log: Path) -> int:
    try:
        return mosquitto_log.read_bytes().count(b"Reloading config")
    except FileNotFoundError:
        return 0


class BrokerAccess:
    """The broker access administration of one local stack."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack

    def ensure_services(self, names: list[str], role: Role) -> None:
        """Issue identities for these services when missing and let a running broker know."""
        self._stack.pki.init()
        if self._stack.pki.ensure(names, role):
            self.refresh_access()

    def revoke(self, names: Iterable[str], *, evict: bool = True) -> list[Revocation]:
        """Revoke these identities; a running broker refuses them from the moment this returns.

        ``evict`` also ends a session still open under a revoked identity: the platform connects
        once as that identity (a certificate valid for two minutes), which takes the session
        over and discards it. Without it, such a session stays connected but may do nothing.
        """
        revocations = [self._stack.pki.revoke(name) for name in names]
        self.refresh_access()
        state = self._stack.state()
        running = [r for r in state.mosquitto() if runner.is_running(r)] if state else []
        if evict and running:
            for revocation in revocations:
                tls = self._stack.pki.ephemeral_tls(revocation.name, revocation.role)
                if not mqtt_answers(LOOPBACK, self._stack.settings.mqtt_port, tls):
                    raise StackError(f"could not end the open session of {revocation.name}")
        return revocations

    def add_vehicles(self, vins: Iterable[str]) -> list[Identity]:
        """A certificate per VIN; a revoked VIN is let back in (its old certificate is not)."""
        pki = self._stack.pki
        pki.init()
        blocked = pki.blocked_names()
        identities = [pki.issue(vin, Role.VEHICLE) for vin in vins]
        if blocked & {identity.name for identity in identities}:
            self.refresh_access()
        return identities

    def add_password_vehicles(self, vins: Iterable[str]) -> dict[str, str]:
        """A new password per VIN (shown once; only its hash is kept); the broker reloads."""
        if self._stack.settings.mqtt_password_port is None:
            raise StackError(
                "vehicles with passwords need the password listener: set stack.mqtt_password_port "
                "(FLEETLINK_STACK__MQTT_PASSWORD_PORT), e.g. 8883"
            )
        pki = self._stack.pki
        pki.init()
        passwords = pki.set_passwords(vins)
        self.refresh_access()
        return passwords

    def refresh_access(self, timeout: float = 10.0) -> None:
        """Rewrite the ACL from the registered identities; a running broker reloads it (SIGHUP)
        and this returns once it has, so a new identity may connect and subscribe at once."""
        pki = self._stack.pki
        pki.write_crl()
        pki.ensure_passwords_file()
        identities = pki.identities(vehicles=False)
        self._stack.acl_file.parent.mkdir(parents=True, exist_ok=True)
        self._stack.acl_file.write_text(
            acl_text(((i.name, i.role) for i in identities), revoked=pki.blocked_names())
        )
        state = self._stack.state()
        for record in state.mosquitto() if state is not None else []:
            if not runner.is_running(record):
                continue
            log = Path(record.log)
            reloads = _count_reloads(log)
            runner.send_signal(record, signal.SIGHUP)
            # The broker is single-threaded: a probe answered after the reload's log line was
            # handled after the new rules took effect.
            if not wait_until(
                lambda log=log, before=reloads: _count_reloads(log) > before,  # type: ignore[misc]
                timeout,
                interval=0.05,
            ):
                raise StackError(f"Mosquitto did not reload its ACL within {timeout:.0f} s")
            if not wait_until(self._stack.mqtt_answers, timeout, interval=0.1):
                raise StackError("Mosquitto did not answer after reloading its ACL")
