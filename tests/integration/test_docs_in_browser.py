"""/docs and /redoc render in a real headless Chromium with every request that leaves the API
refused: the documentation works on a machine without internet."""

from __future__ import annotations

from pathlib import Path

from tests.support.api import hermetic_app
from tests.support.browser import chromium, local_only, served


def test_the_documentation_renders_offline(tmp_path: Path) -> None:
    app, _, _ = hermetic_app(tmp_path)
    operations = sum(
        1
        for item in app.openapi()["paths"].values()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )
    with served(app) as origin, chromium() as browser:
        page = browser.new_page()
        refused = local_only(page, origin)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{origin}/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
        assert page.locator(".swagger-ui .opblock").count() == operations
        assert "fleetlink API" in page.locator(".swagger-ui .info .title").inner_text()

        page.goto(f"{origin}/redoc")
        page.wait_for_selector("[data-section-id]", timeout=20_000)
        assert "fleetlink API" in page.locator("h1").first.inner_text()
        assert page.locator("[data-section-id^='operation/']").count() == operations
        assert refused == [], f"the pages asked the internet for {refused}"
        assert errors == [], errors
