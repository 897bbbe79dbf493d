"""Processes as the kernel sees them: who descends from whom, who is still alive, kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from fleetlink.adapters.polling import wait_until


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
