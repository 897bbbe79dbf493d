"""Released OTA images over HTTP: their signed metadata (fleet admins and viewers), and their
bytes for the cars the orchestrator ordered to install them.

A car reads the bytes with the download token its order carried (``Authorization: Bearer
<token>``, signed by the director, naming one car and one image, short-lived); a fleet admin
may read them with a user token. Downloads resume: ``Range: bytes=N-`` (or ``N-M``, ``-S``) is
answered 206 with ``Content-Range``, a range beyond the end 416, and ``ETag`` is the image's
SHA-256, so ``If-Range`` keeps a resumed download from mixing two files.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Annotated, Final

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from fleetlink.api.auth import Caller, Guard
from fleetlink.api.campaigns import campaigns_state, full_json, require_reader
from fleetlink.api.errors import AUTHENTICATED, ApiError, documented
from fleetlink.contracts.campaigns import IMAGE_NAME, ImageMetadata
from fleetlink.contracts.purchases import FIRMWARE
from fleetlink.security.signing import SignatureError

router = APIRouter(prefix="/v1", tags=["images"], responses=documented(*AUTHENTICATED))

ImageNamePath = Annotated[str, Path(description="a released image's name", pattern=IMAGE_NAME)]
VersionPath = Annotated[str, Path(description="its version, e.g. 2026.41", pattern=FIRMWARE)]

# a bearer token that is no download token of the director's keys: maybe a user's (a JWT)
_NOT_A_DOWNLOAD_TOKEN: Final = frozenset({"token-malformed", "token-unknown-key"})
_BINARY: Final = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _image(request: Request, name: str, version: str) -> ImageMetadata:
    repository = campaigns_state(request).images
    image = await asyncio.to_thread(repository.get, name, version)
    if image is None:
        raise ApiError(404, "unknown-image", f"no released image {name} {version}")
    return image


@router.get(
    "/images",
    summary="Every released image, with its signed metadata (fleet admins and viewers)",
)
async def list_images(request: Request, caller: Caller) -> JSONResponse:
    require_reader(caller)
    released = await asyncio.to_thread(campaigns_state(request).images.releases)
    return JSONResponse({"images": [full_json(image) for image in released]})


@router.get(
    "/images/{name}/{version}",
    summary="A released image's metadata, signed by the image repository's key",
    responses=documented(404),
)
async def get_image(
    request: Request, name: ImageNamePath, version: VersionPath, caller: Caller
) -> JSONResponse:
    require_reader(caller)
    return JSONResponse(full_json(await _image(request, name, version)))


def _downloader(request: Request, name: str, version: str) -> str:
    """Who may read this image's bytes: the car a download token names (for this image only),
    or a fleet admin by user token. The download token is tried first: it is the common case,
    and a user's JWT is told apart by its key id, which no director key has."""
    authorization = request.headers.get("authorization")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        trust = campaigns_state(request).trust
        try:
            claim = trust.read_download_token(token.strip(), _now_ms())
        except SignatureError as error:
            if str(error) not in _NOT_A_DOWNLOAD_TOKEN:
                raise ApiError(
                    401,
                    "invalid-token",
                    f"download token refused: {error}",
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                ) from None
        else:
            if (claim.name, claim.version) != (name, version):
                held = f"{claim.name} {claim.version}"
                raise ApiError(
                    403, "forbidden", f"this download token is for {held}, not {name} {version}"
                )
            return claim.vin
    guard: Guard = request.app.state.guard
    caller = guard.principal(authorization)
    if not caller.may_run_campaigns:
        raise ApiError(403, "forbidden", "only a car with a download token or a fleet admin")
    return caller.name


class _ImageFile(FileResponse):
    """Starlette's file response (streamed in chunks, single and multiple ranges), told by the
    route whether to honour the request's Range: its own answers to a bad one are plain text,
    and RFC 9110 lets a server ignore a range it cannot use rather than refuse the request."""

    def __init__(self, path: str, stat: os.stat_result, etag: str, use_range: bool) -> None:
        super().__init__(
            path, media_type="application/octet-stream", stat_result=stat, headers={"ETag": etag}
        )
        self._use_range = use_range

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._use_range:
            kept = [(k, v) for k, v in scope["headers"] if k not in (b"range", b"if-range")]
            scope = {**scope, "headers": kept}
        await super().__call__(scope, receive, send)


def _use_range(request: Request, size: int, etag: str) -> bool:
    """Whether to answer the request's Range (416 when it starts beyond the end)."""
    asked = request.headers.get("range")
    if asked is None:
        return False
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range != etag:
        return False  # the client holds part of other bytes: the whole file, from the start
    try:
        FileResponse._parse_range_header(asked, size)  # the parser that will serve it
    except MalformedRangeHeader:
        return False  # another unit, or no range it can use: RFC 9110 says ignore it
    except RangeNotSatisfiable:
        raise ApiError(
            416,
            "range-not-satisfiable",
            f"the image has {size} bytes; the range {asked!r} starts beyond them",
            {"Content-Range": f"bytes */{size}"},
        ) from None
    return True


@router.get(
    "/images/{name}/{version}/bytes",
    summary="A released image's bytes, for a car with a download token (resumable)",
    response_class=Response,
    responses={
        200: {"description": "The whole image", "content": _BINARY},
        206: {"description": "The range asked for (Content-Range)", "content": _BINARY},
        **documented(404, 416),
    },
)
async def image_bytes(request: Request, name: ImageNamePath, version: VersionPath) -> Response:
    """``Authorization: Bearer <download token>`` (from the car's ``software.update`` order)
    or a fleet admin's token. ``Range: bytes=N-`` resumes a download; ``Accept-Ranges``,
    ``Content-Length`` and ``ETag`` (the SHA-256) come with every answer."""
    _downloader(request, name, version)
    image = await _image(request, name, version)
    path = campaigns_state(request).images.path(name, version)
    try:
        stat = await asyncio.to_thread(os.stat, path)
    except OSError:
        raise ApiError(404, "unknown-image", f"the bytes of {name} {version} are gone") from None
    etag = f'"{image.sha256}"'
    return _ImageFile(str(path), stat, etag, _use_range(request, stat.st_size, etag))
