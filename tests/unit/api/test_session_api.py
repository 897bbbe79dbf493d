"""The dashboard's session over HTTP: a login code swapped once for an HttpOnly, SameSite=Strict
cookie; the cookie reads like a token, writes only with its CSRF token, and logs out."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fleetlink.cli import app
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.sessions import CSRF_HEADER, SESSION_COOKIE, Sessions, issue_login_code
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings, load_settings
from tests.support.api import CAR, OTHER, run, running_api
from tests.support.stack import user_token


def login_code(settings: Settings, user: str) -> str:
    return issue_login_code(signing_key(settings, SigningPurpose.API_TOKENS), user, ttl_s=300)


def test_a_login_code_opens_a_cookie_session_that_writes_only_with_its_csrf_token(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            code = login_code(api.settings, "ada")
            opened = await api.client.post("/v1/session", json={"code": code})
            assert opened.status_code == 201, opened.text
            cookie = opened.headers["set-cookie"]
            assert cookie.startswith(f"{SESSION_COOKIE}=")
            for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
                assert attribute in cookie
            assert "Secure" not in cookie  # plain http on loopback; https sets it
            session = opened.json()
            assert (session["user"], session["role"]) == ("ada", "fleet-admin")
            csrf = session["csrf"]
            again = await api.client.post("/v1/session", json={"code": code})
            assert (again.status_code, again.json()["error"]) == (401, "invalid-login-code")

            # the cookie alone (the client's jar) reads, and tells the page its CSRF token
            assert (await api.client.get("/v1/vehicles")).status_code == 200
            asked = await api.client.get("/v1/session")
            assert asked.json()["csrf"] == csrf
            # a write without the token is refused and writes nothing
            unsafe = await api.client.post(f"/v1/vehicles/{CAR}/commands", json={"name": "flash"})
            assert (unsafe.status_code, unsafe.json()["error"]) == (403, "csrf")
            wrong = {CSRF_HEADER: "0" * 32}
            forged = await api.client.post(
                f"/v1/vehicles/{CAR}/commands", json={"name": "flash"}, headers=wrong
            )
            assert forged.status_code == 403
            assert api.records(KafkaTopic.COMMANDS) == []
            sent = await api.client.post(
                f"/v1/vehicles/{CAR}/commands",
                json={"name": "flash"},
                headers={CSRF_HEADER: csrf},
            )
            assert sent.status_code == 202, sent.text
            command = await api.client.get(f"/v1/commands/{sent.json()['command_id']}")
            assert command.json()["actor"] == "ada"  # audited under the user's name

            ended = await api.client.delete("/v1/session", headers={CSRF_HEADER: csrf})
            assert ended.status_code == 204
            assert (await api.client.get("/v1/vehicles")).status_code == 401  # jar cleared
            api.client.cookies.set(SESSION_COOKIE, cookie.split(";")[0].split("=", 1)[1])
            replayed = await api.client.get("/v1/vehicles")  # a copy kept after logging out
            assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid-session")

    run(scenario())


def test_only_admins_owners_and_viewers_log_in_and_owners_see_their_cars(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            service = await api.client.post(
                "/v1/session", json={"code": login_code(api.settings, "sam")}
            )
            assert service.status_code == 403
            unknown = await api.client.post(
                "/v1/session", json={"code": login_code(api.settings, "nobody")}
            )
            assert unknown.status_code == 401
            assert SESSION_COOKIE not in api.client.cookies
            owner = await api.client.post(
                "/v1/session", json={"code": login_code(api.settings, "olga")}
            )
            assert owner.status_code == 201
            assert owner.json()["vins"] == [CAR]
            assert (await api.client.get(f"/v1/vehicles/{CAR}")).status_code == 200
            assert (await api.client.get(f"/v1/vehicles/{OTHER}")).status_code == 403
            # a bearer token wins over the cookie, and its session field stays empty
            as_viewer = await api.client.get("/v1/session", headers=api.viewer)
            assert (as_viewer.json()["user"], as_viewer.json()["csrf"]) == ("vera", None)

    run(scenario())


def test_a_login_code_is_no_bearer_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            code = login_code(api.settings, "ada")
            reply = await api.client.get(
                "/v1/vehicles", headers={"Authorization": f"Bearer {code}"}
            )
            assert (reply.status_code, reply.json()["error"]) == (401, "invalid-token")

    run(scenario())


def test_fleetlink_login_prints_a_link_that_opens_a_session(tmp_path: Path) -> None:
    config = tmp_path / "fleetlink.toml"
    config.write_text(f'[stack]\nstate_dir = "{tmp_path / "state"}"\n')
    settings = load_settings(config)
    user_token(settings, "vera", UserRole.VIEWER)
    user_token(settings, "sam", UserRole.SERVICE)
    runner = CliRunner()
    printed = runner.invoke(app, ["--config", str(config), "login", "vera"])
    assert printed.exit_code == 0, printed.output
    link = printed.output.strip()
    assert link.startswith("http://127.0.0.1:8080/ui/#code=")
    session = Sessions(signing_key(settings, SigningPurpose.API_TOKENS), session_ttl_s=600)
    assert session.open(link.split("#code=", 1)[1]).user == "vera"
    refused = runner.invoke(app, ["--config", str(config), "login", "sam"])
    assert refused.exit_code != 0
    assert "has no dashboard" in str(refused.exception)  # main() prints it in one line
