"""Browser sessions, pure: a login code is good once, a session ends when told, and neither
passes for a bearer token or for the other."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetlink.security.sessions import (
    Sessions,
    SpentIds,
    csrf_matches,
    dashboard_link,
    issue_login_code,
)
from fleetlink.security.tokens import TokenError, TokenVerifier, issue_token

KEY = Ed25519PrivateKey.generate()


def test_a_login_code_opens_one_session_whose_csrf_token_is_its_own() -> None:
    sessions = Sessions(KEY, session_ttl_s=600)
    code = issue_login_code(KEY, "ada", ttl_s=300)
    session = sessions.open(code)
    assert session.user == "ada"
    with pytest.raises(TokenError, match="used already"):
        sessions.open(code)
    again = sessions.session(session.cookie)
    assert again.csrf == session.csrf
    assert csrf_matches(again, session.csrf)
    assert not csrf_matches(again, None)
    other = sessions.open(issue_login_code(KEY, "ada", ttl_s=300))
    assert other.csrf != session.csrf  # one session's token opens no other
    assert not csrf_matches(other, session.csrf)


def test_an_ended_session_and_an_expired_code_are_refused() -> None:
    sessions = Sessions(KEY, session_ttl_s=600)
    session = sessions.open(issue_login_code(KEY, "ada", ttl_s=300))
    sessions.end(session.cookie)
    with pytest.raises(TokenError, match="ended"):
        sessions.session(session.cookie)
    with pytest.raises(TokenError, match="expired"):
        sessions.open(issue_login_code(KEY, "ada", ttl_s=-60))
    forged = issue_login_code(Ed25519PrivateKey.generate(), "ada", ttl_s=300)
    with pytest.raises(TokenError, match="invalid login code"):
        sessions.open(forged)


def test_no_credential_passes_for_another_kind() -> None:
    sessions = Sessions(KEY, session_ttl_s=600)
    code = issue_login_code(KEY, "ada", ttl_s=300)
    session = sessions.open(issue_login_code(KEY, "ada", ttl_s=300))
    bearer = issue_token(KEY, "ada", "fleet-admin", ttl_s=300)
    tokens = TokenVerifier(KEY.public_key())
    for not_a_bearer_token in (code, session.cookie):
        with pytest.raises(TokenError, match="audience"):
            tokens.subject(not_a_bearer_token)
    with pytest.raises(TokenError):
        sessions.session(code)  # a code is no session
    with pytest.raises(TokenError):
        sessions.session(bearer)
    with pytest.raises(TokenError):
        sessions.open(session.cookie)  # nor a session a code
    assert tokens.subject(bearer) == "ada"


def test_the_link_carries_the_code_where_no_server_sees_it() -> None:
    link = dashboard_link("http://127.0.0.1:8080/", "abc.def.ghi")
    assert link == "http://127.0.0.1:8080/ui/#code=abc.def.ghi"


def test_api_processes_sharing_a_file_redeem_a_code_once_and_end_a_session_everywhere(
    tmp_path: Path,
) -> None:
    """Two API processes on one port: a code opens one session, whichever process gets it; a
    logout through one ends the session in the other."""
    shared = tmp_path / "api-sessions.sqlite"
    first = Sessions(KEY, session_ttl_s=600, spent=SpentIds(shared))
    second = Sessions(KEY, session_ttl_s=600, spent=SpentIds(shared))
    code = issue_login_code(KEY, "ada", ttl_s=300)
    session = first.open(code)
    with pytest.raises(TokenError, match="used already"):
        second.open(code)
    assert second.session(session.cookie).user == "ada"
    first.end(session.cookie)
    with pytest.raises(TokenError, match="ended"):
        second.session(session.cookie)
    alone = Sessions(KEY, session_ttl_s=600)  # a file of its own (in memory): knows nothing
    assert alone.session(session.cookie).user == "ada"
