"""The one process runner: start children, find them again, stop or drain them.

Every child is started from one long-lived thread of this process with ``PR_SET_PDEATHSIG``:
the kernel sends the signal when the *thread* that forked the child ends, so a child started from
a short-lived thread would be killed early, and one started without it would outlive a
``kill -9`` of its parent. Processes meant to outlive the CLI (``fleetlink stack up``) are
started detached instead, and found again by pid and a marker on their command line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

import msgspec

from fleetlink.adapters.polling import wait_until

STOP = signal.SIGTERM  # finish what is in hand, keep the session, exit
DRAIN = signal.SIGUSR1  # finish, leave for good (a gateway worker unsubscribes first)

_PR_SET_PDEATHSIG = 1

# Popen objects of processes started by this Python process, so we can reap them (no zombies).
_children: dict[int, subprocess.Popen[bytes]] = {}


class ProcessRecord(msgspec.Struct, frozen=True):
    """One detached process: found again by pid, and by its marker on the command line."""

    name: str
    pid: int
    marker: str
    log: str
    port: int


class _Forker:
    """One thread that lives as long as the process and forks every child."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, job: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="forker", daemon=True)
                self._thread.start()
        if threading.current_thread() is self._thread:
            return job()
        done: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((job, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            job, done = self._jobs.get()
            try:
                done.set_result(job())
            except BaseException as error:  # handed to the caller, who raises it
                done.set_exception(error)


_forker = _Forker()


def start(
    argv: Sequence[str],
    *,
    output: Path | None = None,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = True,
    many_files: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own (Ctrl-C reaches only this process, which stops
    its children in order), output appended to ``output`` (None: this process's own).

    ``die_with_parent``: SIGTERM when this process dies, even by ``kill -9``.
    ``many_files``: as many open files as the hard limit allows (brokers: a socket per client).
    """
    parent = os.getpid()

    def before_exec() -> None:
        if many_files:
            raise_open_file_limit()
        if die_with_parent:
            die_with(parent)

    def fork() -> subprocess.Popen[bytes]:
        log: IO[bytes] | None = None
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            log = output.open("ab")
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                start_new_session=True,
                env=None if env is None else dict(env),
                preexec_fn=before_exec,
            )
        finally:
            if log is not None:
                log.close()
        return process

    return _forker.call(fork)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    marker: Path,
    port: int,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = False,
) -> ProcessRecord:
    """Start a stack process (a broker), by default detached: it outlives the CLI."""
    process = start(argv, output=log, env=env, die_with_parent=die_with_parent, many_files=True)
    _children[process.pid] = process
    return ProcessRecord(name=name, pid=process.pid, marker=str(marker), log=str(log), port=port)


def die_with(parent: int) -> None:
    """Called in a child: SIGTERM it when the thread that started it ends (its process dies)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, STOP)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (what a supervisor runs), from ``/proc``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def raise_open_file_limit() -> None:
    """Let this process open as many files as the hard limit allows."""
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


def stop_children(
    children: Sequence[subprocess.Popen[bytes]], timeout: float = 30.0, *, drain: bool = False
) -> None:
    """Signal child processes all at once (``drain``: finish and leave, else stop), and kill
    those still there after ``timeout``."""
    for child in children:
        if child.poll() is None:
            child.send_signal(DRAIN if drain else STOP)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
