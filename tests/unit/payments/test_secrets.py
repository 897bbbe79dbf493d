"""The webhook secrets: configured, or generated once in the state directory, by one process."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fleetlink.errors import ConfigError
from fleetlink.payments.secrets import default_secrets_file, webhook_secrets
from fleetlink.settings import Settings, load_settings


def state(tmp_path: Path) -> Settings:
    return load_settings(stack={"state_dir": tmp_path / "state"})


def test_a_secret_is_generated_once_private_and_kept(tmp_path: Path) -> None:
    settings = state(tmp_path)
    (secret,) = webhook_secrets(settings)
    assert secret.startswith("whsec_")
    assert len(secret) == len("whsec_") + 48
    path = default_secrets_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert webhook_secrets(settings) == [secret]
    assert [p.name for p in path.parent.iterdir()] == ["webhook-secrets"]  # no temporary left


def test_racing_processes_agree_on_one_secret(tmp_path: Path) -> None:
    settings = state(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: tuple(webhook_secrets(settings)), range(32)))
    assert len(set(found)) == 1


def test_a_configured_file_one_secret_per_line(tmp_path: Path) -> None:
    path = tmp_path / "secrets"
    path.write_text("whsec_new\n\n  whsec_old  \n", encoding="utf-8")
    settings = load_settings(payments={"webhook_secrets_file": path})
    assert webhook_secrets(settings) == ["whsec_new", "whsec_old"]


@pytest.mark.parametrize("content", [None, "", "\n  \n"])
def test_a_configured_file_missing_or_empty_is_a_config_error(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "secrets"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    settings = load_settings(payments={"webhook_secrets_file": path})
    with pytest.raises(ConfigError, match=r"payments\.webhook_secrets_file"):
        webhook_secrets(settings)
