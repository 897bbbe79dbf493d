"""The image repository: released images and their signed metadata, one directory each.

``<image_dir>/<name>/<version>/image.bin`` holds the bytes, ``metadata.json`` beside it the
image repository's signed ``ImageMetadata``. A release is never overwritten: the same name and
version with other bytes is refused (a car would see two images under one version).
"""

from __future__ import annotations

import time
from pathlib import Path

from fleetlink.contracts.campaigns import ImageMetadata, sha256_of
from fleetlink.contracts.codec import UndecodableError, decode_with, decoder_of, encode
from fleetlink.errors import FleetlinkError
from fleetlink.security.images import ImageSigner

IMAGE_FILE = "image.bin"
METADATA_FILE = "metadata.json"

_metadata_decoder = decoder_of(ImageMetadata)


class ImageError(FleetlinkError):
    """A release that cannot be made (bad name, version taken by other bytes)."""


class ImageRepository:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, name: str, version: str) -> Path:
        return self.root / name / version

    def path(self, name: str, version: str) -> Path:
        """Where the bytes of a release are (they exist when ``get`` finds its metadata)."""
        return self._dir(name, version) / IMAGE_FILE

    def get(self, name: str, version: str) -> ImageMetadata | None:
        """The signed metadata of a release, or None when there is no such release."""
        if "/" in name or "/" in version or name.startswith(".") or version.startswith("."):
            return None
        try:
            image: ImageMetadata = decode_with(
                _metadata_decoder, (self._dir(name, version) / METADATA_FILE).read_bytes()
            )
        except (OSError, UndecodableError):
            return None
        return image

    def releases(self) -> list[ImageMetadata]:
        """Every release, by name then version."""
        if not self.root.is_dir():
            return []
        found = (
            self.get(version_dir.parent.name, version_dir.name)
            for version_dir in sorted(self.root.glob("*/*"))
        )
        return [image for image in found if image is not None]

    def publish(
        self, data: bytes, *, name: str, version: str, target: str, signer: ImageSigner
    ) -> ImageMetadata:
        """Sign and store a release; the same bytes again return the release made before."""
        image = ImageMetadata(
            name=name,
            version=version,
            target=target,
            length=len(data),
            sha256=sha256_of(data),
            released_at=time.time_ns() // 1_000_000,
        )
        try:  # the contract's patterns and bounds, before anything touches the disk
            decode_with(_metadata_decoder, encode(image))
        except UndecodableError as error:
            raise ImageError(f"cannot release {name} {version}: {error.detail}") from None
        known = self.get(name, version)
        if known is not None:
            if (known.sha256, known.target) != (image.sha256, target):
                raise ImageError(
                    f"{name} {version} is released already with other bytes or another target;"
                    " a new build needs a new version"
                )
            return known
        signed = signer.sign(image)
        directory = self._dir(name, version)
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(directory / IMAGE_FILE, data)
        _write_atomically(directory / METADATA_FILE, encode(signed))  # last: the release exists
        return signed


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)
