"""Released images through the API: their signed metadata for admins and viewers, their bytes
for the car a download token names (that image only, until it expires) or a fleet admin, and
downloads that resume where they broke off (HTTP ranges)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from fleetlink.campaigns.images import ImageRepository
from fleetlink.contracts.campaigns import ImageMetadata, sha256_of
from fleetlink.security.images import DownloadClaim
from fleetlink.security.keys import director_signer, image_signer
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings
from tests.support.api import CAR, run, running_api
from tests.support.stack import user_token

# three and a half of the file response's 64 KiB chunks: ranges cross chunk borders
DATA = bytes(range(256)) * 900 + b"tail"
SIZE = len(DATA)
URL = "/v1/images/infotainment/2026.41/bytes"


def release(settings: Settings, data: bytes = DATA, version: str = "2026.41") -> ImageMetadata:
    return ImageRepository(settings.image_dir()).publish(
        data, name="infotainment", version=version, target="fl-sedan", signer=image_signer(settings)
    )


def download_token(
    settings: Settings, version: str = "2026.41", ttl_ms: int = 60_000, vin: str = CAR
) -> dict[str, str]:
    exp = time.time_ns() // 1_000_000 + ttl_ms
    claim = DownloadClaim(vin=vin, name="infotainment", version=version, exp=exp)
    return {"Authorization": f"Bearer {director_signer(settings).download_token(claim)}"}


def _parts(headers: dict[str, str]) -> list[str]:
    return headers["Authorization"].removeprefix("Bearer ").split(".")


def test_admins_and_viewers_see_the_signed_metadata(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            empty = await api.client.get("/v1/images", headers=api.viewer)
            assert empty.json() == {"images": []}
            image = release(api.settings)
            release(api.settings, b"older", version="2026.30")
            listed = (await api.client.get("/v1/images", headers=api.viewer)).json()["images"]
            assert [i["version"] for i in listed] == ["2026.30", "2026.41"]
            one = await api.client.get("/v1/images/infotainment/2026.41", headers=api.admin)
            assert one.status_code == 200
            shown = one.json()
            assert (shown["sha256"], shown["length"], shown["target"]) == (
                sha256_of(DATA), SIZE, "fl-sedan",
            )  # fmt: skip
            assert (shown["kid"], shown["sig"]) == (image.kid, image.sig)
            assert shown["sig"]  # a car checks it with the image repository's key
            missing = await api.client.get("/v1/images/infotainment/1.0", headers=api.viewer)
            assert (missing.status_code, missing.json()["error"]) == (404, "unknown-image")
            for who in (api.owner, api.service):
                assert (await api.client.get("/v1/images", headers=who)).status_code == 403
            assert (await api.client.get("/v1/images")).status_code == 401

    run(scenario())


def test_a_download_resumes_where_it_broke_off(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            image = release(api.settings)
            token = download_token(api.settings)
            whole = await api.client.get(URL, headers=token)
            assert whole.status_code == 200, whole.text
            assert whole.content == DATA
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["content-length"] == str(SIZE)
            assert whole.headers["etag"] == f'"{image.sha256}"'
            assert whole.headers["content-type"] == "application/octet-stream"

            async def ranged(asked: str, **more: str) -> httpx.Response:
                return await api.client.get(URL, headers={**token, "Range": asked, **more})

            rest = await ranged("bytes=100000-")
            assert rest.status_code == 206
            assert rest.content == DATA[100_000:]
            assert rest.headers["content-range"] == f"bytes 100000-{SIZE - 1}/{SIZE}"
            assert rest.headers["content-length"] == str(SIZE - 100_000)
            middle = await ranged("bytes=65530-65545")
            assert (middle.status_code, middle.content) == (206, DATA[65_530:65_546])
            assert middle.headers["content-range"] == f"bytes 65530-65545/{SIZE}"
            suffix = await ranged("bytes=-4")
            assert (suffix.status_code, suffix.content) == (206, b"tail")
            beyond = await ranged(f"bytes={SIZE}-")
            assert beyond.status_code == 416
            assert beyond.json()["error"] == "range-not-satisfiable"
            assert beyond.headers["content-range"] == f"bytes */{SIZE}"
            # other bytes than the client holds part of: the whole file again
            stale = await ranged("bytes=10-", **{"If-Range": '"0000"'})
            assert (stale.status_code, stale.content) == (200, DATA)
            stale_beyond = await ranged(f"bytes={SIZE}-", **{"If-Range": '"0000"'})
            assert (stale_beyond.status_code, stale_beyond.content) == (200, DATA)
            same = await ranged("bytes=10-", **{"If-Range": f'"{image.sha256}"'})
            assert (same.status_code, same.content) == (206, DATA[10:])
            # a range it cannot use is ignored (RFC 9110), never a plain-text error
            for unusable in ("items=0-5", "bytes=9-3", "bytes=x-y"):
                reply = await ranged(unusable)
                assert (reply.status_code, reply.content) == (200, DATA), unusable

    run(scenario())


def test_a_download_token_opens_its_own_image_only_and_only_in_time(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            release(api.settings)
            release(api.settings, b"older", version="2026.30")
            other = await api.client.get(URL, headers=download_token(api.settings, "2026.30"))
            assert other.status_code == 403
            assert "2026.30" in other.json()["detail"]
            expired = await api.client.get(URL, headers=download_token(api.settings, ttl_ms=-1))
            assert expired.status_code == 401
            assert expired.json()["error"] == "invalid-token"
            assert "token-expired" in expired.json()["detail"]
            # another car's claim under this car's signature
            _, kid, signature = _parts(download_token(api.settings))
            forged_body, _, _ = _parts(download_token(api.settings, vin="APXZZZ1JZXW000007"))
            forged = {"Authorization": f"Bearer {forged_body}.{kid}.{signature}"}
            refused = await api.client.get(URL, headers=forged)
            assert (refused.status_code, refused.json()["error"]) == (401, "invalid-token")
            assert (await api.client.get(URL)).status_code == 401
            garbage = await api.client.get(URL, headers={"Authorization": "Bearer a.b.c"})
            assert garbage.status_code == 401
            assert (await api.client.get(URL, headers=api.admin)).content == DATA
            for who in (api.viewer, api.owner, user_token(api.settings, CAR, UserRole.VEHICLE)):
                reply = await api.client.get(URL, headers=who)
                assert (reply.status_code, reply.json()["error"]) == (403, "forbidden")
            unknown = await api.client.get(
                "/v1/images/infotainment/9.9/bytes", headers=download_token(api.settings, "9.9")
            )
            assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown-image")

    run(scenario())
