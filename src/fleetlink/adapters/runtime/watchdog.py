"""A process whose thread died exits at once, so whoever started it starts it again.

A thread that dies with an exception leaves a process that still runs and may still answer
health checks while doing nothing. ``exit_when_a_thread_dies`` turns that into an exit with
``EXIT_THREAD_DIED`` and one log line naming the thread and the error; ``Lifelines`` catches
threads that ended without an exception (health endpoints and main loops ask it).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
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
