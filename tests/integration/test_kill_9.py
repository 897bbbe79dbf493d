"""``kill -9`` of ``fleetlink demo`` or ``fleetlink gateway`` leaves no process of theirs alive,
and the next demo recovers the stale stack it left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fleetlink.adapters.polling import wait_until
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block
from tests.support.gateway import gateway_config, wait_ready
from tests.support.polling import eventually
from tests.support.stack import REPO, processes_using, run_cli, stack_env, stack_settings


def descendants(root: int) -> dict[int, str]:
    """Every live process below ``root`` (by parent pid), with its command line."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[-1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(proc.name)] = int(fields[1])
            commands[int(proc.name)] = cmdline
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = commands[pid]
                frontier.append(pid)
    return found


def alive(pids: list[int]) -> list[int]:
    living = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.append(pid)
    return living


def kill_9_and_wait(process: subprocess.Popen[bytes], children: dict[int, str]) -> list[str]:
    """SIGKILL ``process``; the command lines of its children still alive 45 s later."""
    process.kill()
    process.wait(10)
    pids = list(children)
    wait_until(lambda: not alive(pids), 45, interval=0.2)
    left = alive(pids)
    for pid in left:  # the test cleans up what the code under test failed to
        os.kill(pid, signal.SIGKILL)
    return [children[pid] for pid in left]


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


def test_kill_9_of_the_demo_leaves_nothing_and_the_next_demo_recovers(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "state")
    api_port = free_port_block(1)
    env = {
        **os.environ,
        **stack_env(settings),
        "FLEETLINK_GATEWAY__METRICS_PORT": str(free_port_block(1)),
        "FLEETLINK_API__PORT": str(api_port),
        # a child whose parent died waits at most this for a Kafka that died with it
        "FLEETLINK_RUNTIME__STOP_GRACE_S": "3",
        "FLEETLINK_GATEWAY__DRAIN_TIMEOUT_S": "5",
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "fleetlink", "demo", "--vehicles", "5"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wanted = ("kafka", "mosquitto", " worker ", " tracker", " api", " simulate ")

    def all_running() -> bool:
        lines = list(descendants(demo.pid).values())
        return all(any(name in line for line in lines) for name in wanted)

    def api_answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=1).is_success
        except httpx.HTTPError:
            return False

    try:
        eventually(all_running, 60, "every process of the demo", interval=0.5)
        eventually(api_answers, 30, "answer from the demo's API", interval=0.5)
    finally:
        children = descendants(demo.pid)
        left = kill_9_and_wait(demo, children)
    assert left == []
    assert processes_using(tmp_path / "state") == []
    assert (tmp_path / "state" / "stack.json").exists()  # the stale stack the next run finds

    started = time.monotonic()
    result = run_cli("demo", "--duration", "3", "--vehicles", "5", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Demo ended; stopped 2 process(es)." in result.stdout
    assert not (tmp_path / "state" / "stack.json").exists()
    assert processes_using(tmp_path / "state") == []
    assert time.monotonic() - started < 80
