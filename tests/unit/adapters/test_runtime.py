"""The poison journal, the watchdog and the supervisor's restarts, on real files and processes."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fleetlink.adapters.runtime.faults import FaultHook, InjectedFaultError
from fleetlink.adapters.runtime.poison import PoisonJournal, digest
from fleetlink.adapters.runtime.watchdog import EXIT_STOP_OVERDUE, EXIT_THREAD_DIED, Lifelines
from fleetlink.adapters.supervisor import Program, Supervisor

LOG = logging.getLogger("test.runtime")


def journal(directory: Path, max_crashes: int = 3) -> PoisonJournal:
    return PoisonJournal(directory, "worker-0", max_crashes=max_crashes, log=LOG)


def test_a_crash_while_holding_an_input_counts_against_it_across_restarts(tmp_path: Path) -> None:
    pill, other = digest(b"topic", b"pill"), digest(b"topic", b"fine")
    for crash in range(1, 4):
        run = journal(tmp_path)
        assert run.crashes(pill) == crash - 1
        assert not run.is_poison(pill)
        run.holding(other)
        run.done()  # handled: nothing counts
        run.holding(pill)
        run.close()  # the process dies here, the slot still names the pill
    after = journal(tmp_path)
    assert after.crashes(pill) == 3
    assert after.is_poison(pill)
    assert after.crashes(other) == 0
    assert not after.is_poison(other)


def test_a_clean_run_counts_nothing_and_a_torn_counts_file_is_survived(tmp_path: Path) -> None:
    run = journal(tmp_path)
    run.holding(digest(b"x"))
    run.done()
    run.close()
    assert journal(tmp_path).crashes(digest(b"x")) == 0
    (tmp_path / "worker-0.crashes.json").write_bytes(b'[{"digest": "\xff')
    assert journal(tmp_path).crashes(digest(b"x")) == 0


def test_the_slot_survives_kill_9_of_the_process_that_wrote_it(tmp_path: Path) -> None:
    script = (
        "import logging, os, signal, sys\n"
        "from pathlib import Path\n"
        "from fleetlink.adapters.runtime.poison import PoisonJournal, digest\n"
        "j = PoisonJournal(Path(sys.argv[1]), 'worker-0', max_crashes=1, "
        "log=logging.getLogger())\n"
        "j.holding(digest(b'pill'))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False, timeout=30)
    assert done.returncode == -9
    assert journal(tmp_path, max_crashes=1).is_poison(digest(b"pill"))


def test_the_fault_hook_fires_only_on_its_marker() -> None:
    FaultHook(None).check(b"anything")
    hook = FaultHook("CRASH-ME")
    hook.check(b"harmless")
    hook.check(None)
    with pytest.raises(InjectedFaultError):
        hook.check(b'{"x": "CRASH-ME"}')


def test_a_thread_that_dies_ends_the_process_at_once_with_its_exit_code(tmp_path: Path) -> None:
    script = (
        "import threading, time\n"
        "from fleetlink.logs import configure\n"
        "from fleetlink.adapters.runtime.watchdog import exit_when_a_thread_dies\n"
        "exit_when_a_thread_dies(configure('test'))\n"
        "def work():\n"
        "    raise UnicodeDecodeError('utf-8', b'\\xed', 0, 1, 'invalid continuation byte')\n"
        "threading.Thread(target=work, name='mqtt-network').start()\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=30
    )
    assert done.returncode == EXIT_THREAD_DIED
    assert time.monotonic() - started < 10  # not the 30 s the main thread would sleep
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["level"] == "critical"
    assert line["dead_thread"] == "mqtt-network"
    assert "UnicodeDecodeError" in line["error"]


def test_a_process_told_to_stop_exits_within_its_grace_whatever_it_waits_for() -> None:
    script = (
        "import threading, time\n"
        "from fleetlink.logs import configure\n"
        "from fleetlink.adapters.runtime.watchdog import StopDeadline, stop_on_signals\n"
        "stop = threading.Event()\n"
        "stop_on_signals(stop, StopDeadline(0.5, configure('test')))\n"
        "print('ready', flush=True)\n"
        "stop.wait(30)\n"
        "time.sleep(30)  # a close that never returns: Kafka went away with the parent\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        started = time.monotonic()
        child.terminate()
        assert child.wait(15) == EXIT_STOP_OVERDUE
        assert time.monotonic() - started < 5  # not the 30 s it would have waited
    finally:
        child.kill()
        child.wait(5)
    assert child.stderr is not None
    line = json.loads(child.stderr.read().strip().splitlines()[-1])
    assert line["msg"] == "stopping took too long; exiting now"


def running(pid: int) -> bool:
    """Alive, not a zombie waiting for whoever adopted it to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_a_process_whose_parent_died_exits_within_its_grace_whatever_its_main_thread_does() -> None:
    """No signal at all (the parent set none) and a main thread that never looks up: the
    orphan watch still ends the process ``grace`` after the parent died."""
    orphan = (
        "import threading, time\n"
        "from fleetlink.logs import configure\n"
        "from fleetlink.adapters.runtime.watchdog import StopDeadline, stop_when_orphaned\n"
        "stop_when_orphaned(threading.Event(), StopDeadline(0.5, configure('test')), 0.1)\n"
        "time.sleep(60)  # held, as in a C call waiting for a Kafka that is gone\n"
    )
    parent = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {orphan!r}],"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(2)  # the child is up and watching its parent\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=30, check=True
    )
    pid = int(done.stdout.strip())
    started = time.monotonic()
    while running(pid) and time.monotonic() - started < 20:
        time.sleep(0.1)
    gone = not running(pid)
    if not gone:
        os.kill(pid, signal.SIGKILL)
    assert gone
    assert time.monotonic() - started < 10  # not the 60 s its main thread would have slept


def test_lifelines_name_a_thread_that_ended_quietly() -> None:
    lifelines = Lifelines()
    quick = threading.Thread(target=lambda: None, name="quick")
    lifelines.watch("quick", lambda: quick)
    lifelines.watch("not-started", lambda: None)
    assert lifelines.dead() is None  # created, not started: nothing to judge yet
    quick.start()
    quick.join()
    assert lifelines.dead() == "quick"


def test_the_supervisor_restarts_any_program_that_exits(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    script = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit({EXIT_THREAD_DIED})"
    program = Program("crasher", [sys.executable, "-c", script], log=tmp_path / "crasher.log")
    supervisor = Supervisor([program], backoff_s=0.05, stop_timeout_s=5, log=LOG)
    supervisor.start()
    try:
        deadline = time.monotonic() + 20

        def started() -> int:  # a restarted process may not have written yet: count what did
            return len(starts.read_text()) if starts.exists() else 0

        while (supervisor.handles[0].restarts < 2 or started() < 3) and time.monotonic() < deadline:
            supervisor.check()
            time.sleep(0.02)
    finally:
        supervisor.stop()
    handle = supervisor.handles[0]
    assert handle.restarts >= 2
    assert handle.last_exit == EXIT_THREAD_DIED
    assert len(starts.read_text()) >= 3
    assert not handle.running
