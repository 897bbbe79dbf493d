"""The demo's OTA rollouts: a release of the sedans' software, rolled out in the default groups
once a fleet admin created it and a second one approved it; the next release when it ended.
Shows the campaign's state, its groups and how long cars took to apply it."""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
from rich.table import Table

from fleetlink.campaigns.images import ImageRepository
from fleetlink.security.keys import image_signer, signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.settings import Settings

DEMO_APPROVER = "demo-release-manager"
IMAGE, TARGET = "fl-sedan-os", "fl-sedan"
FIRST_RELEASE = 48  # 2026.48, then .49 ...: newer than every simulated car's firmware
_ENDED = frozenset({"finished", "aborted"})


class DemoRollout:
    def __init__(self, settings: Settings, api: httpx.Client, every_s: float = 5.0) -> None:
        self._settings = settings
        self._api = api
        UserRegistry(settings.users_file()).put(User(DEMO_APPROVER, UserRole.FLEET_ADMIN))
        token = issue_token(
            signing_key(settings, SigningPurpose.API_TOKENS), DEMO_APPROVER, "fleet-admin", 86_400
        )
        self._approver = {"Authorization": f"Bearer {token}"}
        self._every_s = every_s
        self._next = time.monotonic() + 20  # the fleet comes online first
        self._release = FIRST_RELEASE
        self._campaign: dict[str, Any] | None = None
        self.last = "waiting for the fleet"

    def _publish(self, version: str) -> None:
        data = random.Random(version).randbytes(64 * 1024)  # the same bytes every demo
        ImageRepository(self._settings.image_dir()).publish(
            data, name=IMAGE, version=version, target=TARGET, signer=image_signer(self._settings)
        )

    def tick(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._every_s
        try:
            if self._campaign is None or self._campaign.get("state") in _ENDED:
                self._start()
            else:
                self._follow()
        except (httpx.HTTPError, ValueError, KeyError) as error:
            self.last = f"not answering yet ({type(error).__name__})"

    def _start(self) -> None:
        if self._campaign is not None:  # the one before ended: the next release
            self._release += 1
        version = f"2026.{self._release}"
        self._publish(version)
        body = {"name": f"sedan software {version}", "image": IMAGE, "version": version}
        reply = self._api.post("/v1/campaigns", json=body)
        reply.raise_for_status()
        campaign_id = reply.json()["campaign_id"]
        approved = self._api.post(
            f"/v1/campaigns/{campaign_id}/approve", json={}, headers=self._approver
        )
        self.last = f"{version} created, approval: HTTP {approved.status_code}"
        self._campaign = {"campaign_id": campaign_id, "state": "awaiting-approval"}

    def _follow(self) -> None:
        assert self._campaign is not None
        reply = self._api.get(f"/v1/campaigns/{self._campaign['campaign_id']}")
        reply.raise_for_status()
        self._campaign = reply.json()
        self.last = self._campaign.get("reason") or ""

    def table(self) -> Table:
        title = "OTA campaign (groups 1 %, 10 %, 50 %, the rest; four eyes; installed when parked)"
        table = Table(title=title, title_justify="left")
        for column in ("version", "state", "group", "succeeded", "failed", "in progress"):
            table.add_column(column, justify="right")
        table.add_column("apply p50", justify="right")
        table.add_column("last", overflow="fold")
        campaign = self._campaign or {}
        summary = campaign.get("summary") or {}
        counts: dict[str, int] = summary.get("counts") or {}
        errors = sum(counts.get(s, 0) for s in ("failed", "rejected", "timed-out"))
        ended = errors + counts.get("succeeded", 0) + counts.get("cancelled", 0)
        groups = campaign.get("groups") or []
        apply_time = summary.get("apply_time") or {}
        table.add_row(
            f"2026.{self._release}",
            str(campaign.get("state", "-")),
            f"{campaign.get('group', -1) + 1} of {len(groups)}" if groups else "-",
            f"{counts.get('succeeded', 0):,}",
            f"{errors:,}",
            f"{summary.get('vehicles', 0) - ended:,}",
            f"{apply_time['p50_ms'] / 1000:.1f} s" if apply_time else "-",
            self.last,
        )
        return table
