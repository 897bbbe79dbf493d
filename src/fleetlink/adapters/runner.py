"""Start processes detached from the caller, find them again by pid, and stop only those.

A pid alone can be reused by the OS; each record also keeps a marker (the absolute path of the
process's config file) that must appear on the process's command line before we signal it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from fleetlink.adapters.polling import wait_until

# Popen objects of processes started by this Python process, so we can reap them (no zombies).
_children: dict[int, subprocess.Popen[bytes]] = {}


class ProcessRecord(msgspec.Struct, frozen=True):
    """One process the stack started."""

    name: str
    pid: int
    marker: str
    log: str
    port: int


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    marker: Path,
    port: int,
    env: Mapping[str, str] | None = None,
) -> ProcessRecord:
    """Start ``argv`` in its own session (it outlives the CLI), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else dict(env),
            preexec_fn=raise_open_file_limit,
        )
    _children[process.pid] = process
    return ProcessRecord(name=name, pid=process.pid, marker=str(marker), log=str(log), port=port)


def raise_open_file_limit() -> None:
    """Brokers hold a socket per client: let them open as many files as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def is_running(record: ProcessRecord) -> bool:
    """True while the recorded pid is alive, not a zombie, and still runs our command."""
    child = _children.get(record.pid)
    if child is not None:
        # Our own child: poll() is exact, and the java launcher may still be re-exec'ing itself,
        # which leaves /proc/<pid>/cmdline briefly empty.
        if child.poll() is None:
            return True
        del _children[record.pid]
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(record.pid, os.WNOHANG)
    proc = Path("/proc") / str(record.pid)
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = (proc / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and record.marker in cmdline


def send_signal(record: ProcessRecord, signum: signal.Signals) -> bool:
    """Signal the process if it is still ours; False when it was already gone."""
    if not is_running(record):
        return False
    try:
        os.kill(record.pid, signum)
    except ProcessLookupError:
        return False
    return True


def stop(record: ProcessRecord, timeout: float = 30.0) -> None:
    """SIGTERM, wait up to ``timeout`` seconds for a clean exit, then SIGKILL."""
    if not send_signal(record, signal.SIGTERM):
        return
    if wait_until(lambda: not is_running(record), timeout, interval=0.1):
        return
    send_signal(record, signal.SIGKILL)
    wait_until(lambda: not is_running(record), 10.0, interval=0.05)


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a log file (empty when there is none yet)."""
    if not path.is_file():
        return []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 256 * 1024))
        data = handle.read().decode(errors="replace")
    return data.splitlines()[-lines:] if lines > 0 else []


def wait_for_exit(records: Sequence[ProcessRecord], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    return wait_until(
        lambda: not any(is_running(r) for r in records), max(0.0, deadline - time.monotonic())
    )


def stop_children(children: Sequence[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """Terminate child processes, all at once, and kill those still there after ``timeout``."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
