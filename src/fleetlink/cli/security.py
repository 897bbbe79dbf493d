"""``fleetlink pki``, ``vehicles``, ``users``, ``token`` and ``login``: identities, users and their
keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fleetlink.cli.common import console, settings_from
from fleetlink.errors import FleetlinkError
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import Revocation, Role, SigningPurpose
from fleetlink.security.sessions import BROWSER_ROLES, dashboard_link, issue_login_code
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.settings import Settings
from fleetlink.stack.local import LocalStack

pki_app = typer.Typer(help="The development PKI: CA, broker and client certificates.")
vehicles_app = typer.Typer(help="Vehicle identities: one client certificate per VIN.")
users_app = typer.Typer(help="API users and their roles.")


def _stack(ctx: typer.Context) -> LocalStack:
    return LocalStack(settings_from(ctx).stack)


@pki_app.command("init")
def pki_init(ctx: typer.Context) -> None:
    """Create the development CA, the broker certificate and the platform keys (once)."""
    stack = _stack(ctx)
    created = stack.pki.init()
    for purpose in SigningPurpose:
        stack.pki.signing_key(purpose)
    state = "created" if created else "already there"
    console.print(f"development PKI {state}: {stack.pki.directory}")


@pki_app.command("issue")
def pki_issue(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The identity (its CN, username and client id).")],
    role: Annotated[Role, typer.Option("--role", help="What it may do on the broker.")],
) -> None:
    """Issue a service identity (gateway, monitor, proxy); the broker's ACL follows."""
    stack = _stack(ctx)
    if role is Role.VEHICLE:
        raise FleetlinkError("register vehicles with `fleetlink vehicles add VIN`")
    stack.pki.init()
    stack.pki.issue(name, role)
    stack.access.refresh_access()
    identity = stack.pki.identity(name)
    console.print(f"{role.value} identity {name}: {identity.cert_file} {identity.key_file}")


@vehicles_app.command("add")
def vehicles_add(
    ctx: typer.Context,
    vins: Annotated[list[str], typer.Argument(help="One VIN or more (17 characters, no I, O, Q).")],
    password: Annotated[
        bool,
        typer.Option(
            "--password",
            help="A password instead of a certificate, for the password listener "
            "(stack.mqtt_password_port); shown once.",
        ),
    ] = False,
) -> None:
    """Register vehicles: a client certificate each (CN = VIN) from the development CA."""
    stack = _stack(ctx)
    if password:
        port = stack.settings.mqtt_password_port
        for vin, secret in stack.access.add_password_vehicles(vins).items():
            console.print(f"{vin}: username {vin} password {secret}", soft_wrap=True)
        console.print(f"connect over TLS to port {port}; the passwords are not shown again")
    else:
        for identity in stack.access.add_vehicles(vins):
            console.print(f"{identity.name}: {identity.cert_file}")
    console.print(f"CA to trust: {stack.pki.ca_file}")


@vehicles_app.command("revoke")
def vehicles_revoke(
    ctx: typer.Context,
    vins: Annotated[list[str], typer.Argument(help="One VIN or more.")],
) -> None:
    """Cut vehicles off (a stolen or retired unit): the broker refuses their certificates."""
    _print_revocations(_stack(ctx).access.revoke(vins))


@pki_app.command("revoke")
def pki_revoke(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="One identity or more.")],
) -> None:
    """Revoke identities (a leaked service key): the broker refuses their certificates."""
    _print_revocations(_stack(ctx).access.revoke(names))


def _print_revocations(revocations: list[Revocation]) -> None:
    for revocation in revocations:
        what = "password" if revocation.serial is None else f"certificate {revocation.serial:x}"
        console.print(
            f"{revocation.name}: {what} revoked; the broker refuses it at connect, and an open "
            "session of it was ended"
        )


@vehicles_app.command("list")
def vehicles_list(ctx: typer.Context) -> None:
    """The registered vehicles, and the revoked ones."""
    pki = _stack(ctx).pki
    identities = pki.identities(vehicles=True)
    for identity in identities:
        console.print(identity.name)
    with_password = pki.password_vehicles()
    for vin in with_password:
        console.print(f"{vin} (password)")
    vehicles = {r.name for r in pki.revocations() if r.role is Role.VEHICLE}
    revoked = sorted(vehicles & pki.blocked_names())
    for name in revoked:
        console.print(f"{name} (revoked)")
    console.print(
        f"{len(identities)} with a certificate, {len(with_password)} with a password, "
        f"{len(revoked)} revoked"
    )


def _registry(ctx: typer.Context) -> UserRegistry:
    return UserRegistry(settings_from(ctx).users_file())


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (a VIN for role vehicle).")],
    role: Annotated[UserRole, typer.Option("--role", help="What the user may do.")],
    vin: Annotated[
        list[str] | None, typer.Option("--vin", help="An owner's car (repeat for more).")
    ] = None,
) -> None:
    """Add or replace an API user."""
    registry = _registry(ctx)
    registry.put(User(name, role, vins=list(vin or [])))
    console.print(f"user {name} ({role.value}) in {registry.path}")


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """The API users."""
    table = Table("user", "role", "vehicles", "disabled")
    for user in _registry(ctx).all():
        table.add_row(user.name, user.role.value, ", ".join(user.vins), str(user.disabled))
    console.print(table)


def _user(settings: Settings, name: str) -> User:
    user = UserRegistry(settings.users_file()).get(name)
    if user is None:
        raise FleetlinkError(
            f"no user {name!r}: add one with `fleetlink users add {name} --role ...`"
        )
    return user


def token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A registered user.")],
    ttl: Annotated[
        int | None, typer.Option("--ttl", min=60, help="Seconds (default security.token_ttl_s).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write it to this file.")] = None,
) -> None:
    """Print a bearer token for an API user (signed with the platform's token key)."""
    settings = settings_from(ctx)
    user = _user(settings, name)
    key = signing_key(settings, SigningPurpose.API_TOKENS)
    text = issue_token(key, user.name, user.role.value, ttl or settings.security.token_ttl_s)
    if out is not None:
        out.write_text(text + "\n")
        out.chmod(0o600)
    else:
        print(text)


def login(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A registered admin, owner or viewer.")],
    base_url: Annotated[
        str | None,
        typer.Option("--url", help="The API's address (default http://api.host:api.port)."),
    ] = None,
) -> None:
    """Print a dashboard link that logs NAME in once (valid security.login_code_ttl_s)."""
    settings = settings_from(ctx)
    user = _user(settings, name)
    if user.role not in BROWSER_ROLES:
        raise FleetlinkError(f"the {user.role.value} role has no dashboard: use `fleetlink token`")
    key = signing_key(settings, SigningPurpose.API_TOKENS)
    code = issue_login_code(key, user.name, settings.security.login_code_ttl_s)
    print(dashboard_link(base_url or f"http://{settings.api.host}:{settings.api.port}", code))
