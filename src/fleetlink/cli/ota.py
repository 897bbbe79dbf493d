"""``fleetlink ota``: the image repository's side of OTA updates: release images (signed with the
image repository's key), list them, and make test images."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final

import msgspec
import typer
from rich.table import Table

from fleetlink.campaigns.images import ImageRepository
from fleetlink.cli.common import console, settings_from
from fleetlink.contracts.campaigns import ImageMetadata
from fleetlink.errors import FleetlinkError
from fleetlink.security.keys import image_signer

app = typer.Typer(help="OTA images: release, list, make test images.", no_args_is_help=True)

_CHUNK: Final = 1 << 20  # make-image writes 1 MiB at a time: any size, little memory


def _repository(ctx: typer.Context) -> ImageRepository:
    return ImageRepository(settings_from(ctx).image_dir())


@app.command("publish")
def publish(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The image's bytes.", dir_okay=False)],
    name: Annotated[str, typer.Option("--name", help="The image's name, e.g. infotainment.")],
    version: Annotated[str, typer.Option("--version", help="Its version, e.g. 2026.41.")],
    target: Annotated[str, typer.Option("--target", help="The car model it is built for.")],
) -> None:
    """Release an image: sign its metadata with the image repository's key and store both.
    The same name and version again with the same bytes is a no-op; with other bytes, refused."""
    settings = settings_from(ctx)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise FleetlinkError(f"cannot read {file}: {error.strerror or error}") from None
    repository = ImageRepository(settings.image_dir())
    signer = image_signer(settings)
    # ImageError is a FleetlinkError: the CLI prints its message alone, exit status 1
    image = repository.publish(data, name=name, version=version, target=target, signer=signer)
    console.print_json(msgspec.json.encode(image).decode())
    console.print(f"released in {repository.path(name, version).parent}", highlight=False)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def images_table(released: list[ImageMetadata]) -> Table:
    table = Table(title="Released images", title_justify="left")
    for column in ("name", "version", "target"):  # what people search for: never broken
        table.add_column(column, no_wrap=True)
    for column in ("bytes", "sha256", "released", "key"):
        table.add_column(column, overflow="fold")
    for image in released:
        table.add_row(
            image.name,
            image.version,
            image.target,
            f"{image.length:,}",
            image.sha256[:12] + "…",
            _when(image.released_at),
            image.kid or "-",
        )
    return table


@app.command("images")
def images(ctx: typer.Context) -> None:
    """The released images, by name then version."""
    repository = _repository(ctx)
    released = repository.releases()
    if not released:
        console.print(f"no images released in {repository.root}", highlight=False)
        return
    console.print(images_table(released))


def write_image(out: Path, size: int, seed: int) -> None:
    """Deterministic test bytes: the same size and seed give the same image on any machine
    (a seeded ``random.Random``, whose stream Python keeps stable across releases)."""
    generator = random.Random(seed)
    with out.open("wb") as sink:
        left = size
        while left > 0:
            sink.write(generator.randbytes(min(_CHUNK, left)))
            left -= _CHUNK


@app.command("make-image")
def make_image(
    out: Annotated[Path, typer.Argument(help="Where to write it.", dir_okay=False)],
    size: Annotated[int, typer.Option("--size", min=1, help="Bytes.")],
    seed: Annotated[int, typer.Option("--seed", help="The same seed, the same bytes.")] = 0,
) -> None:
    """Write deterministic test image bytes (for the demo and the benchmark)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, size, seed)
    except OSError as error:
        raise FleetlinkError(f"cannot write {out}: {error.strerror or error}") from None
    console.print(f"{out}: {size:,} bytes (seed {seed})", highlight=False)
