"""Keep child processes running: restart any that exits, with back-off for one that keeps
crashing. Gateway workers (a crashed one comes back with the same index, so the same client id)
and the demo's tracker, API and simulator run under it."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleetlink.adapters import runner
from fleetlink.adapters.runtime.watchdog import EXIT_THREAD_DIED

_MAX_BACKOFF_S = 10.0


@dataclass(frozen=True)
class Program:
    """One process to keep running: its name, command line and (optionally) its log file."""

    name: str
    argv: list[str]
    log: Path | None = None  # output appended here; None: the supervisor's own
    env: dict[str, str] | None = None  # its whole environment; None: this process's


@dataclass
class WorkerHandle:
    index: int
    program: Program
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
        programs: Sequence[Program],
        *,
        backoff_s: float,
        stop_timeout_s: float,
        log: logging.Logger,
    ) -> None:
        self._backoff_s = backoff_s
        self._stop_timeout_s = stop_timeout_s
        self._log = log
        self.handles = [WorkerHandle(index, program) for index, program in enumerate(programs)]
        self._stopping = False

    @classmethod
    def of_workers(
        cls,
        argv_for: Callable[[int], list[str]],
        workers: int,
        *,
        backoff_s: float,
        stop_timeout_s: float,
        log: logging.Logger,
    ) -> Supervisor:
        """``workers`` copies of one program, told apart by their index."""
        programs = [Program(f"worker-{index}", argv_for(index)) for index in range(workers)]
        return cls(programs, backoff_s=backoff_s, stop_timeout_s=stop_timeout_s, log=log)

    def start(self) -> None:
        for handle in self.handles:
            self._spawn(handle)

    def _spawn(self, handle: WorkerHandle) -> None:
        program = handle.program
        # dies with the supervisor, even by kill -9
        handle.process = runner.start(program.argv, output=program.log, env=program.env)
        handle.started_at = time.monotonic()
        handle.restart_at = None
        self._log.info("process started", extra={"program": program.name, "pid": handle.pid})

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
                    "process exited; restarting",
                    extra={
                        "program": handle.program.name,
                        "pid": process.pid,
                        "exit": process.returncode,
                        "why": _exit_meaning(process.returncode),
                        "delay_s": delay,
                    },
                )
            if handle.restart_at is not None and handle.restart_at <= now:
                handle.restarts += 1
                self._spawn(handle)

    def stop(self, *, drain: bool = False) -> None:
        """Stop (finish and keep the session) or drain (finish and leave) every process."""
        self._stopping = True
        signum = runner.DRAIN if drain else runner.STOP
        running = [h.process for h in self.handles if h.process is not None and h.running]
        for process in running:
            process.send_signal(signum)
        deadline = time.monotonic() + self._stop_timeout_s
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._log.warning("process did not stop; killing it", extra={"pid": process.pid})
                process.kill()
                process.wait(timeout=10)


def _exit_meaning(code: int) -> str:
    if code == EXIT_THREAD_DIED:
        return "a thread it needs died"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return "exited" if code == 0 else "failed"
