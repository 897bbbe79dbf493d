"""Run N gateway worker processes; restart a crashed one with the same index (same client id)."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_PR_SET_PDEATHSIG = 1
_MAX_BACKOFF_S = 10.0


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the supervisor dies, even by kill -9."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class WorkerHandle:
    index: int
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    crashes_in_a_row: int = 0
    restart_at: float | None = None
    last_exit: int | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(
        self,
        argv_for: Callable[[int], list[str]],
        workers: int,
        *,
        backoff_s: float,
        stop_timeout_s: float,
        log: logging.Logger,
    ) -> None:
        self._argv_for = argv_for
        self._backoff_s = backoff_s
        self._stop_timeout_s = stop_timeout_s
        self._log = log
        self.handles = [WorkerHandle(index) for index in range(workers)]
        self._stopping = False

    def start(self) -> None:
        for handle in self.handles:
            self._spawn(handle)

    def _spawn(self, handle: WorkerHandle) -> None:
        handle.process = subprocess.Popen(
            self._argv_for(handle.index),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops workers in order
            preexec_fn=_die_with_parent,
        )
        handle.started_at = time.monotonic()
        handle.restart_at = None
        self._log.info("worker started", extra={"index": handle.index, "pid": handle.pid})

    def check(self) -> None:
        """Restart workers that exited, with exponential backoff for one that keeps crashing."""
        if self._stopping:
            return
        now = time.monotonic()
        for handle in self.handles:
            process = handle.process
            if process is not None and process.poll() is not None and handle.restart_at is None:
                handle.last_exit = process.returncode
                quick = now - handle.started_at < 10
                handle.crashes_in_a_row = handle.crashes_in_a_row + 1 if quick else 1
                delay = min(_MAX_BACKOFF_S, self._backoff_s * 2 ** (handle.crashes_in_a_row - 1))
                handle.restart_at = now + delay
                self._log.warning(
                    "worker exited; restarting",
                    extra={
                        "index": handle.index,
                        "pid": process.pid,
                        "exit": process.returncode,
                        "delay_s": delay,
                    },
                )
            if handle.restart_at is not None and handle.restart_at <= now:
                handle.restarts += 1
                self._spawn(handle)

    def stop(self, *, drain: bool = False) -> None:
        """SIGTERM (finish and keep the session) or SIGUSR1 (drain and leave) every worker."""
        self._stopping = True
        signum = signal.SIGUSR1 if drain else signal.SIGTERM
        running = [h.process for h in self.handles if h.process is not None and h.running]
        for process in running:
            process.send_signal(signum)
        deadline = time.monotonic() + self._stop_timeout_s
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._log.warning("worker did not stop; killing it", extra={"pid": process.pid})
                process.kill()
                process.wait(timeout=10)
