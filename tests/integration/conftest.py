"""One real Kafka + Mosquitto stack per test session, started by the code of `fleetlink stack`."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version

import pytest

from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.browser import chromium_version
from tests.support.stack import running_stack, stack_settings


@pytest.fixture(scope="session")
def stack_config(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return stack_settings(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def local_stack(stack_config: Settings) -> Iterator[LocalStack]:
    with running_stack(stack_config) as stack:
        yield stack


@pytest.fixture(scope="session")
def bootstrap_servers(local_stack: LocalStack) -> str:
    return local_stack.bootstrap_servers()


@pytest.fixture(scope="session")
def mqtt_port(local_stack: LocalStack) -> int:
    return local_stack.settings.mqtt_port


def pytest_report_header() -> list[str]:
    """The browser pair of the browser tests: Playwright is built for one Chromium major."""
    return [f"playwright {version('playwright')}, {chromium_version()}"]
