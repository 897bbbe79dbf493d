"""``kill -9`` of ``fleetlink gateway`` leaves no worker alive (for ``fleetlink demo``: see
``test_topics_and_demo.py``, whose demo starts from the stale stack a killed one left)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.gateway import gateway_config, wait_ready
from tests.support.processes import descendants, kill_9_and_wait
from tests.support.stack import REPO


def test_kill_9_of_the_gateway_leaves_no_worker(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, _topics = gateway_config(tmp_path, stack_config, workers=2)
    gateway = subprocess.Popen(
        [sys.executable, "-m", "fleetlink", "--config", str(config), "gateway", "--workers", "2"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_ready(settings, range(2), timeout=60)
        workers = descendants(gateway.pid)
        assert sum(" worker " in line for line in workers.values()) == 2, workers
    finally:
        left = kill_9_and_wait(gateway, descendants(gateway.pid))
    assert left == []
