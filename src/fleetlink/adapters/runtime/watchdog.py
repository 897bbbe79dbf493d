"""A process whose thread died exits at once, so whoever started it starts it again; one told to
stop exits within its grace time.

A thread that dies with an exception leaves a process that still runs and may still answer
health checks while doing nothing. ``exit_when_a_thread_dies`` turns that into an exit with
``EXIT_THREAD_DIED`` and one log line naming the thread and the error; ``Lifelines`` catches
threads that ended without an exception (health endpoints and main loops ask it).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Final

# EX_SOFTWARE of sysexits.h: an internal error; supervisors restart on any non-zero exit.
EXIT_THREAD_DIED: Final = 70

ExitFunction = Callable[[int], None]


def exit_when_a_thread_dies(log: logging.Logger, *, exit_now: ExitFunction = os._exit) -> None:
    """From now on, an uncaught exception in any thread logs why and ends the process."""

    def died(name: str, error: BaseException | None, trace: TracebackType | None) -> None:
        log.critical(
            "a thread died; the process exits so that it is restarted",
            extra={
                "dead_thread": name,
                "error": repr(error),
                "exit_code": EXIT_THREAD_DIED,
                "trace": "".join(traceback.format_tb(trace)),
            },
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        exit_now(EXIT_THREAD_DIED)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        died(args.thread.name if args.thread else "?", args.exc_value, args.exc_traceback)

    def main_hook(
        kind: type[BaseException], error: BaseException, trace: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, error, trace)
            return
        died("MainThread", error, trace)

    threading.excepthook = thread_hook
    sys.excepthook = main_hook


class Lifelines:
    """Threads a process cannot work without; ``dead()`` names one that is gone."""

    def __init__(self) -> None:
        self._threads: dict[str, Callable[[], threading.Thread | None]] = {}

    def watch(self, name: str, thread: Callable[[], threading.Thread | None]) -> None:
        """``thread`` returns the thread to check (None: not started yet, nothing to check)."""
        self._threads[name] = thread

    def dead(self) -> str | None:
        for name, thread_of in self._threads.items():
            thread = thread_of()
            if thread is not None and thread.ident is not None and not thread.is_alive():
                return name
        return None


# EX_TEMPFAIL of sysexits.h: told to stop, could not finish in time (Kafka away, a hung close).
EXIT_STOP_OVERDUE: Final = 75


class StopDeadline:
    """Once armed (a stop signal came), the process exits within ``grace_s`` seconds whatever it
    still waits for: a process whose parent died must not linger because Kafka went with it."""

    def __init__(
        self, grace_s: float, log: logging.Logger, *, exit_now: ExitFunction = os._exit
    ) -> None:
        self._grace_s = grace_s
        self._log = log
        self._exit_now = exit_now
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        if self._timer is not None:
            return
        self._timer = threading.Timer(self._grace_s, self._overdue)
        self._timer.daemon = True
        self._timer.start()

    def _overdue(self) -> None:
        self._log.error(
            "stopping took too long; exiting now",
            extra={"grace_s": self._grace_s, "exit_code": EXIT_STOP_OVERDUE},
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit_now(EXIT_STOP_OVERDUE)


def stop_when_orphaned(stop: threading.Event, deadline: StopDeadline, every_s: float = 0.5) -> None:
    """A thread that sees the parent die (the process is handed to another) and then sets
    ``stop`` and arms ``deadline``, even while the main thread is held in a C call (a Python
    signal handler, and so the deadline it arms, waits for the main thread)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        stop.set()
        deadline.arm()

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def stop_on_signals(stop: threading.Event, deadline: StopDeadline) -> None:
    """SIGTERM and SIGINT set ``stop`` and arm ``deadline`` (call from the main thread)."""

    def on_signal(*_: object) -> None:
        stop.set()
        deadline.arm()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
