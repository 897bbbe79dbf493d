"""The development PKI: a local CA, the broker's certificate, one client certificate per identity.

Layout of the PKI directory (inside the stack's state directory unless configured)::

    ca.pem ca.key              the development CA (key readable by its owner only)
    broker.pem broker.key      the MQTT broker's server certificate (127.0.0.1, localhost)
    vehicles/VIN.pem .key      one client certificate per vehicle (CN = VIN)
    services/NAME.pem .key     one per service identity (a gateway worker, a monitor)
    signing/                   Ed25519 keys of the platform (commands, grants, API tokens)
    revoked.json crl.pem       revoked certificates: the record, and the CRL the broker checks
    passwords                  VIN:hash lines of the cars without a certificate (Mosquitto's format)

The certificate is the registry record: its CN is the identity (the broker takes it as the
username and the client id) and its OU the role, from which the broker's ACL is generated.
Nothing here is ever committed: ``fleetlink pki init`` generates it on each machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID

from fleetlink.security.pki.certificates import ca_certificate, leaf_certificate
from fleetlink.security.pki.files import (
    create_once,
    password_hash,
    utc_now,
    write_atomic,
    write_key,
)
from fleetlink.security.pki.identities import (
    Identity,
    PkiError,
    Revocation,
    Role,
    SigningPurpose,
    file_stem,
    identity_from,
    validate_identity_name,
)
from fleetlink.security.signing import Verifier

CA_DAYS = 3650
LEAF_DAYS = 825


class DevPki:
    """Create and read the development PKI of one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()

    # paths ------------------------------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key_file(self) -> Path:
        return self.directory / "ca.key"

    @property
    def broker_cert_file(self) -> Path:
        return self.directory / "broker.pem"

    @property
    def broker_key_file(self) -> Path:
        return self.directory / "broker.key"

    def identities_dir(self, role: Role) -> Path:
        return self.directory / ("vehicles" if role is Role.VEHICLE else "services")

    @property
    def signing_dir(self) -> Path:
        return self.directory / "signing"

    @property
    def revocations_file(self) -> Path:
        return self.directory / "revoked.json"

    @property
    def crl_file(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def passwords_file(self) -> Path:
        return self.directory / "passwords"

    def exists(self) -> bool:
        return self.ca_file.is_file() and self.broker_cert_file.is_file()

    # creation ---------------------------------------------------------------------------------

    def init(self) -> bool:
        """Create the CA and the broker certificate unless they exist; True when created."""
        if self.exists():
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = ca_certificate(ca_key, CA_DAYS)
        write_key(self.ca_key_file, ca_key)
        write_atomic(self.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
        broker_key = ec.generate_private_key(ec.SECP256R1())
        broker_cert = self._sign_leaf(
            common_name="fleetlink broker",
            organizational_unit="broker",
            public_key=broker_key.public_key(),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            alt_names=[
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ],
        )
        write_key(self.broker_key_file, broker_key)
        write_atomic(self.broker_cert_file, broker_cert.public_bytes(serialization.Encoding.PEM))
        return True

    def issue(self, name: str, role: Role) -> Identity:
        """A new client certificate for ``name`` (replacing an earlier one of the same name)."""
        validate_identity_name(name, role)
        return self.issue_unchecked(name, role)

    def issue_unchecked(self, name: str, role: Role) -> Identity:
        """Issue without validating the name. Only for tests that prove the broker copes with a
        mis-issued certificate (a CN of ``#``); the CLI always goes through :meth:`issue`."""
        self._require()
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign_leaf(
            common_name=name,
            organizational_unit=role.value,
            public_key=key.public_key(),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        directory = self.identities_dir(role)
        stem = file_stem(name)
        key_file, cert_file = directory / f"{stem}.key", directory / f"{stem}.pem"
        write_key(key_file, key)
        write_atomic(cert_file, cert.public_bytes(serialization.Encoding.PEM))
        return Identity(name, role, cert_file, key_file)

    def ensure(self, names: Iterable[str], role: Role) -> list[str]:
        """Issue certificates for those of ``names`` that have none; returns the new ones.

        A revoked name is refused: only an explicit :meth:`issue` lets it back in.
        """
        blocked = self.blocked_names()
        issued = []
        for name in names:
            if self.find(name) is None:
                if name in blocked:
                    command = "vehicles add" if role is Role.VEHICLE else "pki issue"
                    raise PkiError(
                        f"{name} was revoked; `fleetlink {command} {name}` issues it a new "
                        "certificate (the revoked one stays refused)"
                    )
                self.issue(name, role)
                issued.append(name)
        return issued

    def revoke(self, name: str) -> Revocation:
        """Revoke ``name``: its certificate's serial joins the CRL and its files are removed; a
        password of its is removed too. The name stays blocked (see :meth:`blocked_names`) until
        it is issued a new certificate or password."""
        self._require()
        passwords = self._password_hashes()
        identity = self.find(name)
        if identity is None and name not in passwords:
            self.identity(name)  # raises the error that says how to register it
        serial = None
        if identity is not None:
            serial = x509.load_pem_x509_certificate(identity.cert_file.read_bytes()).serial_number
        role = identity.role if identity is not None else Role.VEHICLE
        revocation = Revocation(name, role, serial, utc_now())
        revocations = [*self.revocations(), revocation]
        write_atomic(self.revocations_file, msgspec.json.encode(revocations))
        self.write_crl(revocations)
        if identity is not None:
            identity.key_file.unlink()
            identity.cert_file.unlink()
        if passwords.pop(name, None) is not None:
            self._write_password_hashes(passwords)
        return revocation

    def set_passwords(self, vins: Iterable[str]) -> dict[str, str]:
        """A new random password per VIN, for the broker's password listener; the passwords are
        returned once and only their hashes kept. A revoked VIN is let back in."""
        vins = list(vins)
        for vin in vins:
            validate_identity_name(vin, Role.VEHICLE)
        hashes = self._password_hashes()
        passwords = {vin: secrets.token_urlsafe(24) for vin in vins}
        hashes.update({vin: password_hash(password) for vin, password in passwords.items()})
        self._write_password_hashes(hashes)
        return passwords

    def password_vehicles(self) -> list[str]:
        return sorted(self._password_hashes())

    def ensure_passwords_file(self) -> Path:
        """Mosquitto will not start with a ``password_file`` that is missing."""
        if not self.passwords_file.is_file():
            self._write_password_hashes({})
        return self.passwords_file

    def revocations(self) -> list[Revocation]:
        if not self.revocations_file.is_file():
            return []
        try:
            return msgspec.json.decode(self.revocations_file.read_bytes(), type=list[Revocation])
        except msgspec.ValidationError as exc:
            raise PkiError(f"{self.revocations_file} is damaged: {exc}") from None

    def blocked_names(self) -> set[str]:
        """Revoked names that hold no newer certificate: the broker refuses them everything."""
        passwords = self._password_hashes()
        return {
            r.name
            for r in self.revocations()
            if self.find(r.name) is None and r.name not in passwords
        }

    def write_crl(self, revocations: Iterable[Revocation] | None = None) -> Path:
        """Write the CA's certificate revocation list (empty when nothing is revoked).

        It is valid as long as the CA: an expired CRL would make the broker refuse every client.
        """
        self._require()
        ca_key = self._ca_key()
        ca_cert = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(utc_now() - datetime.timedelta(minutes=5))
            .next_update(ca_cert.not_valid_after_utc)
        )
        for revocation in self.revocations() if revocations is None else revocations:
            if revocation.serial is None:
                continue
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(revocation.serial)
                .revocation_date(revocation.revoked_at)
                .build()
            )
        crl = builder.sign(ca_key, hashes.SHA256())
        write_atomic(self.crl_file, crl.public_bytes(serialization.Encoding.PEM))
        return self.crl_file

    def signing_key(self, purpose: SigningPurpose) -> Ed25519PrivateKey:
        """The platform's Ed25519 key for ``purpose``, created on first use (owner-only file)."""
        path = self.signing_dir / f"{purpose.value}.key"
        if not path.is_file():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            self.signing_dir.mkdir(parents=True, exist_ok=True)
            create_once(path, pem)
        loaded = serialization.load_pem_private_key(path.read_bytes(), None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise PkiError(f"{path} is not an Ed25519 key")
        return loaded

    def vehicle_verifier(self) -> Verifier:
        """What a car of this stack trusts: the platform's vehicle-trust public key."""
        return Verifier.of(self.signing_key(SigningPurpose.VEHICLE_TRUST).public_key())

    # reading ----------------------------------------------------------------------------------

    def find(self, name: str) -> Identity | None:
        stem = file_stem(name)
        for role in (Role.VEHICLE, Role.GATEWAY):
            cert_file = self.identities_dir(role) / f"{stem}.pem"
            key_file = cert_file.with_suffix(".key")
            if cert_file.is_file() and key_file.is_file():
                return identity_from(cert_file, key_file)
        return None

    def identity(self, name: str) -> Identity:
        """The identity ``name``, or an error that says how to create it."""
        found = self.find(name)
        if found is None:
            raise PkiError(
                f"no MQTT identity {name!r} in {self.directory}: register it with "
                f"`fleetlink vehicles add {name}` (a vehicle) or `fleetlink pki issue {name}`"
            )
        return found

    def client_tls(self, name: str) -> ssl.SSLContext:
        """A TLS context that trusts the development CA and shows ``name``'s certificate."""
        identity = self.identity(name)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(identity.cert_file), str(identity.key_file))
        return context

    def ephemeral_tls(self, name: str, role: Role) -> ssl.SSLContext:
        """TLS as ``name`` with a certificate valid for two minutes whose key never stays on
        disk: how the platform takes a revoked identity's session over to end it."""
        self._require()
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign_leaf(
            common_name=name,
            organizational_unit=role.value,
            public_key=key.public_key(),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            valid_for=datetime.timedelta(minutes=2),
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with tempfile.TemporaryDirectory(dir=self.directory) as directory:
            key_file, cert_file = Path(directory) / "key.pem", Path(directory) / "cert.pem"
            write_key(key_file, key)
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            context.load_cert_chain(str(cert_file), str(key_file))
        return context

    def identities(self, *, vehicles: bool) -> list[Identity]:
        """The issued vehicle identities, or the service identities, sorted by name."""
        directory = self.identities_dir(Role.VEHICLE if vehicles else Role.GATEWAY)
        found = []
        for cert_file in sorted(directory.glob("*.pem")):
            key_file = cert_file.with_suffix(".key")
            if key_file.is_file():
                found.append(identity_from(cert_file, key_file))
        return sorted(found, key=lambda identity: identity.name)

    # internals --------------------------------------------------------------------------------

    def _require(self) -> None:
        if not self.exists():
            raise PkiError(f"no development PKI in {self.directory}: run `fleetlink pki init`")
        if not self.ca_key_file.is_file():
            raise PkiError(f"the CA key {self.ca_key_file} is missing: this PKI cannot issue")

    def _password_hashes(self) -> dict[str, str]:
        if not self.passwords_file.is_file():
            return {}
        lines = self.passwords_file.read_text().splitlines()
        return dict(line.split(":", 1) for line in lines if ":" in line)

    def _write_password_hashes(self, hashes: dict[str, str]) -> None:
        text = "".join(f"{vin}:{digest}\n" for vin, digest in sorted(hashes.items()))
        write_atomic(self.passwords_file, text.encode(), mode=0o600)

    def _ca_key(self) -> ec.EllipticCurvePrivateKey:
        ca_key = serialization.load_pem_private_key(self.ca_key_file.read_bytes(), None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{self.ca_key_file} is not an EC key")
        return ca_key

    def _sign_leaf(
        self,
        *,
        common_name: str,
        organizational_unit: str,
        public_key: ec.EllipticCurvePublicKey,
        usage: x509.ObjectIdentifier,
        alt_names: list[x509.GeneralName] | None = None,
        valid_for: datetime.timedelta = datetime.timedelta(days=LEAF_DAYS),
    ) -> x509.Certificate:
        return leaf_certificate(
            self._ca_key(),
            x509.load_pem_x509_certificate(self.ca_file.read_bytes()),
            common_name=common_name,
            organizational_unit=organizational_unit,
            public_key=public_key,
            usage=usage,
            alt_names=alt_names,
            valid_for=valid_for,
        )
