"""The webhook's shared secrets: configured, or generated once in the stack's state."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from fleetlink.errors import ConfigError
from fleetlink.settings import Settings

KEY = "payments.webhook_secrets_file"


def default_secrets_file(settings: Settings) -> Path:
    return settings.stack.state_dir / "payments" / "webhook-secrets"


def webhook_secrets(settings: Settings) -> list[str]:
    """Every secret a webhook may be signed with (the first signs; all verify: rotation)."""
    configured = settings.payments.webhook_secrets_file
    if configured is not None:
        return _read(configured, f"{KEY} ({configured})")
    path = default_secrets_file(settings)
    if not path.exists():
        _create(path)
    return _read(path, f"{path} (generated; delete it to get a new one, or set {KEY})")


def _read(path: Path, what: str) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{what}: cannot read the webhook secrets: {error}") from None
    found = [line.strip() for line in text.splitlines() if line.strip()]
    if not found:
        raise ConfigError(f"{what}: holds no webhook secret (one per line)")
    return found


def _create(path: Path) -> None:
    """One new secret at ``path``, unless another process got there first (then theirs)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # written whole under a temporary name (mkstemp: mode 0600), then linked to the final one:
    # a reader never sees a half-written file, and of two racing processes one link wins
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".webhook-secrets.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(f"whsec_{secrets.token_hex(24)}\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
