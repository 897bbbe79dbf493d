"""The development PKI and the broker ACL generated from it."""

from __future__ import annotations

import base64
import hashlib
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fleetlink.security.broker_acl import acl_text
from fleetlink.security.pki import DevPki, PkiError, Role


@pytest.fixture
def pki(tmp_path: Path) -> DevPki:
    pki = DevPki(tmp_path / "pki")
    assert pki.init() is True
    return pki


def test_init_creates_a_ca_and_a_broker_certificate_once(pki: DevPki) -> None:
    ca = x509.load_pem_x509_certificate(pki.ca_file.read_bytes())
    broker = x509.load_pem_x509_certificate(pki.broker_cert_file.read_bytes())
    assert broker.issuer == ca.subject
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert stat.S_IMODE(pki.ca_key_file.stat().st_mode) == 0o600
    before = pki.ca_file.read_bytes()
    assert pki.init() is False  # a second init keeps the CA (every issued identity stays valid)
    assert pki.ca_file.read_bytes() == before


def test_a_vehicle_certificate_names_its_vin_and_role(pki: DevPki) -> None:
    identity = pki.issue("WVWZZZ1JZXW000001", Role.VEHICLE)
    cert = x509.load_pem_x509_certificate(identity.cert_file.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity.name
    assert pki.find("WVWZZZ1JZXW000001") is not None
    found = pki.identity("WVWZZZ1JZXW000001")
    assert (found.name, found.role) == ("WVWZZZ1JZXW000001", Role.VEHICLE)
    assert stat.S_IMODE(identity.key_file.stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["#", "+", "WVWZZZ1JZXW00000", "WVWZZZ1JZXW00000O", "../etc"])
def test_a_vehicle_must_be_named_by_a_vin(pki: DevPki, name: str) -> None:
    with pytest.raises(PkiError, match="is not a VIN"):
        pki.issue(name, Role.VEHICLE)


@pytest.mark.parametrize("name", ["#", "gw/1", "", "WVWZZZ1JZXW000001"])
def test_a_service_name_is_plain_and_never_a_vin(pki: DevPki, name: str) -> None:
    with pytest.raises(PkiError, match="not a service name"):
        pki.issue(name, Role.GATEWAY)


def test_ensure_issues_only_what_is_missing(pki: DevPki) -> None:
    assert pki.ensure(["WVWZZZ1JZXW000001"], Role.VEHICLE) == ["WVWZZZ1JZXW000001"]
    vins = ["WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"]
    assert pki.ensure(vins, Role.VEHICLE) == ["WVWZZZ1JZXW000002"]
    assert [i.name for i in pki.identities(vehicles=True)] == vins
    assert pki.identities(vehicles=False) == []


def test_an_unknown_identity_says_how_to_register_it(pki: DevPki) -> None:
    with pytest.raises(PkiError, match="fleetlink vehicles add WVWZZZ1JZXW000009"):
        pki.identity("WVWZZZ1JZXW000009")


def test_issuing_without_a_pki_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="fleetlink pki init"):
        DevPki(tmp_path / "none").issue("WVWZZZ1JZXW000001", Role.VEHICLE)


def test_acl_gives_vehicles_their_own_topics_and_services_their_role() -> None:
    text = acl_text([("fleetlink-gateway-0", Role.GATEWAY), ("fleetlink-monitor", Role.MONITOR)])
    lines = text.splitlines()
    assert "pattern write vehicles/%u/telemetry" in lines
    assert "pattern read vehicles/%u/commands/+" in lines
    assert "pattern read vehicles/%u/delivered" in lines
    assert not [line for line in lines if line.startswith("pattern write") and "delivered" in line]
    # no rule before the first user line may open vehicle topics to everyone
    first_user = lines.index("user fleetlink-gateway-0")
    assert not [
        line for line in lines[:first_user] if line.startswith("topic ") and "vehicles" in line
    ]
    gateway = lines[first_user + 1 : lines.index("user fleetlink-monitor")]
    assert "topic read vehicles/#" in gateway
    assert "topic write vehicles/+/commands/+" in gateway
    assert "topic write vehicles/+/delivered" in gateway
    monitor = lines[lines.index("user fleetlink-monitor") + 1 :]
    assert not [line for line in monitor if line.startswith("topic write")]


def test_a_revoked_certificate_is_in_the_crl_and_its_name_blocked_until_reissued(
    pki: DevPki,
) -> None:
    vin, other = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"
    pki.ensure([vin, other], Role.VEHICLE)
    old = x509.load_pem_x509_certificate(pki.identity(vin).cert_file.read_bytes())

    revocation = pki.revoke(vin)

    assert (revocation.name, revocation.serial) == (vin, old.serial_number)
    crl = x509.load_pem_x509_crl(pki.crl_file.read_bytes())
    ca = x509.load_pem_x509_certificate(pki.ca_file.read_bytes())
    assert crl.is_signature_valid(ca.public_key())
    assert crl.get_revoked_certificate_by_serial_number(old.serial_number) is not None
    assert crl.next_update_utc == ca.not_valid_after_utc  # never stale while the CA lives
    assert pki.find(vin) is None
    assert pki.find(other) is not None
    assert pki.blocked_names() == {vin}
    with pytest.raises(PkiError, match=f"{vin} was revoked; `fleetlink vehicles add {vin}`"):
        pki.ensure([vin], Role.VEHICLE)  # a simulator registering its cars cannot undo it

    new = x509.load_pem_x509_certificate(pki.issue(vin, Role.VEHICLE).cert_file.read_bytes())
    assert pki.blocked_names() == set()
    pki.write_crl()
    crl = x509.load_pem_x509_crl(pki.crl_file.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(old.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(new.serial_number) is None


def test_revoking_an_unknown_identity_says_how_to_register_it(pki: DevPki) -> None:
    with pytest.raises(PkiError, match="no MQTT identity"):
        pki.revoke("WVWZZZ1JZXW000009")
    assert pki.revocations() == []


def test_acl_denies_a_revoked_identity_every_topic() -> None:
    lines = acl_text(
        [("fleetlink-gateway-0", Role.GATEWAY)], revoked=["WVWZZZ1JZXW000001"]
    ).splitlines()
    revoked = lines.index("user WVWZZZ1JZXW000001")
    assert lines[revoked + 1] == "topic deny #"
    assert "user WVWZZZ1JZXW000001" not in acl_text([]).splitlines()


def test_a_password_is_kept_as_mosquittos_pbkdf2_hash_only(pki: DevPki) -> None:
    vin = "WVWZZZ1JZXW000001"
    password = pki.set_passwords([vin])[vin]
    line = pki.passwords_file.read_text().strip()
    name, _, rounds, salt, digest = line.split("$")
    assert name == f"{vin}:"
    assert password not in line
    expected = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt), int(rounds), 64
    )
    assert base64.b64decode(digest) == expected
    assert len(password) >= 32
    assert stat.S_IMODE(pki.passwords_file.stat().st_mode) == 0o600
    assert pki.password_vehicles() == [vin]
    assert pki.set_passwords([vin])[vin] != password  # a new one each time


def test_revoking_a_password_car_removes_its_hash_and_blocks_it(pki: DevPki) -> None:
    vin = "WVWZZZ1JZXW000001"
    pki.set_passwords([vin, "WVWZZZ1JZXW000002"])
    revocation = pki.revoke(vin)
    assert revocation.serial is None
    assert pki.password_vehicles() == ["WVWZZZ1JZXW000002"]
    assert pki.blocked_names() == {vin}
    pki.set_passwords([vin])
    assert pki.blocked_names() == set()


@pytest.mark.parametrize("name", ["#", "fleetlink-gateway-0", "WVWZZZ1JZXW00000O"])
def test_only_a_vin_gets_a_password(pki: DevPki, name: str) -> None:
    with pytest.raises(PkiError, match="is not a VIN"):
        pki.set_passwords([name])
    assert pki.password_vehicles() == []


def test_an_ephemeral_identity_leaves_no_key_behind(pki: DevPki) -> None:
    before = sorted(path for path in pki.directory.rglob("*"))
    context = pki.ephemeral_tls("WVWZZZ1JZXW000001", Role.VEHICLE)
    assert sorted(path for path in pki.directory.rglob("*")) == before
    assert context.verify_mode == ssl.CERT_REQUIRED
