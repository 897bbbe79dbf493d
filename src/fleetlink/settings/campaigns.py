"""OTA campaigns: the orchestrator, the image repository, the car's side of an update."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, FilePath

from fleetlink.settings.base import Section


class CampaignsSettings(Section):
    """The campaign orchestrator (``fleetlink campaigns run``) and the images it rolls out.

    Unset key files mean those of the local stack's PKI. The image repository's key belongs
    offline with the release engineers (``fleetlink ota publish`` is the only thing that reads
    it); the director's key is online, in the orchestrator.
    """

    group_id: str = Field(default="fleetlink-campaigns", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    # released images and their signed metadata; default: <stack.state_dir>/images
    image_dir: Path | None = None
    image_key_file: FilePath | None = None  # Ed25519: the image repository signs releases
    director_key_file: FilePath | None = None  # Ed25519: the director signs per-car orders
    # where cars download images from; default: the API's own address
    artifact_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    # how often running campaigns are looked at (start groups, send orders, time cars out)
    tick_s: float = Field(default=1.0, gt=0, le=60)
    # how often a changed campaign's progress is written at most
    progress_every_s: float = Field(default=1.0, gt=0, le=300)
    # a download token lasts as long as the car's order, at most this long
    download_token_ttl_s: int = Field(default=86_400, ge=60, le=90 * 86_400)
