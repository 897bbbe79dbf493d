"""A real browser for tests: Playwright for Python driving Debian's ``chromium`` (no browser
download), and an ASGI app served on a free loopback port for it to open."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from playwright.sync_api import Browser, Page, Route, sync_playwright

from fleetlink.adapters.polling import wait_until
from fleetlink.stack.ports import free_port_block


def chromium_path() -> str:
    """Debian's chromium (the bootstrap installs it); missing is a failure, never a skip."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise AssertionError("no chromium on PATH: run scripts/bootstrap.sh (apt install chromium)")
    return path


def chromium_version() -> str:
    try:
        found = subprocess.run(
            [chromium_path(), "--version"], capture_output=True, text=True, timeout=10
        )
    except (AssertionError, OSError, subprocess.TimeoutExpired) as error:
        return f"chromium unusable: {error}"
    return found.stdout.strip() or found.stderr.strip()


def browser_versions() -> str:
    """Playwright's release and Debian's chromium: each Playwright is made for one Chromium."""
    return f"playwright {metadata.version('playwright')}, {chromium_version()}"


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` on uvicorn in a thread, at the URL yielded; stopped on exit."""
    port = free_port_block(1)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="served-app", daemon=True)
    thread.start()
    try:
        if not wait_until(lambda: server.started, timeout=15, interval=0.05):
            raise AssertionError("the app did not start listening in 15 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def local_only(page: Page, origin: str) -> list[str]:
    """Abort every request of ``page`` that leaves ``origin``; the returned list fills with them."""
    host = urlsplit(origin).netloc
    refused: list[str] = []

    def route(request_route: Route) -> None:
        url = request_route.request.url
        if urlsplit(url).netloc == host:
            request_route.continue_()
        else:
            refused.append(url)
            request_route.abort()

    page.route("**/*", route)
    return refused
