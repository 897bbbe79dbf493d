"""One edge-cloud stack (an edge and a cloud Kafka linked by MirrorMaker 2, Mosquitto beside
the edge) for the tests of this package: started by the first that asks, stopped after the
last, so the rest of the suite does not run beside its four JVMs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.stack import edge_cloud_settings, running_stack


@pytest.fixture(scope="package")
def edge_cloud_config(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return edge_cloud_settings(tmp_path_factory.mktemp("edge-cloud"))


@pytest.fixture(scope="package")
def edge_cloud_stack(edge_cloud_config: Settings) -> Iterator[LocalStack]:
    with running_stack(edge_cloud_config) as stack:
        yield stack
