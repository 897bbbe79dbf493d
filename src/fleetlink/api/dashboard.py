"""The operations dashboard: its page and assets (built from ``web/`` by the bootstrap), and
the street map it draws. The page is public (it holds no data: it logs in with the link's
one-time code and then reads the API like any client); every figure it shows comes from an
authenticated endpoint."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from fleetlink.api import map_layers
from fleetlink.api.auth import Caller
from fleetlink.api.errors import AUTHENTICATED, ApiError, documented

BUILT: Final = Path(__file__).parent / "static" / "dashboard"
# the page loads only what the API serves: MapLibre's worker is a file beside the bundle, the
# map has no tiles, glyphs or fonts; MapLibre draws markers with element styles (not inline CSS)
PAGE_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)

router = APIRouter(prefix="/v1", tags=["dashboard"])


@router.get(
    "/map/streets",
    summary="The streets the dashboard draws (GeoJSON LineStrings)",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/geo+json": {}}},
        304: {"description": "the copy the client holds is current (If-None-Match)"},
        **documented(*AUTHENTICATED, 404),
    },
)
async def street_map(request: Request, _caller: Caller) -> Response:
    path: Path = request.app.state.settings.street_map_file()
    if not path.is_file():
        raise ApiError(
            404,
            "no-street-map",
            f"no street map at {path}: `fleetlink street-map` writes the simulated city's",
        )
    stat = path.stat()
    tag = '"' + hashlib.sha256(f"{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:16]
    tag += '"'
    headers = {"ETag": tag, "Cache-Control": "private, max-age=300"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="application/geo+json", headers=headers)


def serve_dashboard(app: FastAPI) -> None:
    """``/ui/``: the page, ``/ui/assets/``: what it loads."""
    app.include_router(router)
    app.include_router(map_layers.router)
    if (BUILT / "assets").is_dir():
        app.mount("/ui/assets", StaticFiles(directory=BUILT / "assets"), name="dashboard-assets")

    @app.get("/ui", include_in_schema=False)
    async def to_page() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=308)

    @app.get("/ui/", include_in_schema=False)
    async def page() -> Response:
        index = BUILT / "index.html"
        if not index.is_file():
            return JSONResponse(
                {
                    "error": "dashboard-not-built",
                    "detail": "scripts/bootstrap.sh builds web/ with npm into "
                    f"{BUILT}; run it (make test and make demo do)",
                },
                status_code=503,
            )
        return FileResponse(
            index,
            headers={
                "Content-Security-Policy": PAGE_POLICY,
                "Cache-Control": "no-cache",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
            },
        )
