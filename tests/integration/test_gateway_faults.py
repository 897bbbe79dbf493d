"""Fault tests: real processes, real failures; each ends with a set comparison of message ids.

Every id the broker acknowledged to a publisher must be in Kafka; duplicates are allowed
(at-least-once) and reported.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from fleetlink.settings import Settings
from fleetlink.sim.flood import FloodResult, flood, split_plans, vins_for
from fleetlink.stack import LocalStack
from tests.support.gateway import (
    gateway_config,
    published_ids,
    start_worker,
    stop_worker,
    supervised_gateway,
    wait_for_ids,
    wait_ready,
)
from tests.support.polling import eventually
from tests.support.stack import flood_brokers


class Stream:
    """A flood of telemetry running in the background while a test breaks things."""

    def __init__(
        self, settings: Settings, prefix: str, vins: int, per_vin: int, rate: float
    ) -> None:
        brokers = flood_brokers(settings, 2)
        plans = split_plans(brokers, vins_for(vins, prefix), per_vin, rate_per_s=rate)
        self.results: list[FloodResult] = []
        self.error: BaseException | None = None
        self.expected = vins * per_vin
        self._thread = threading.Thread(target=self._run, args=(plans,), daemon=True)
        self._thread.start()

    def _run(self, plans: list) -> None:  # type: ignore[type-arg]
        try:
            self.results = flood(plans, timeout=300)
        except BaseException as error:  # reported by finish()
            self.error = error

    def finish(self) -> set[str]:
        self._thread.join(320)
        assert self.error is None, self.error
        ids = published_ids(self.results)
        assert len(ids) == self.expected
        return ids


def check_all_arrived(bootstrap: str, topic: str, published: set[str], what: str) -> None:
    arrival = wait_for_ids(bootstrap, topic, published, timeout=120)
    missing = published - arrival.ids
    print(
        f"{what}: {len(published)} published, {len(arrival.ids & published)} in Kafka, "
        f"{len(missing)} missing, {arrival.duplicates} duplicates"
    )
    assert not missing, f"{what}: {len(missing)} messages lost, e.g. {sorted(missing)[:3]}"


def test_kill_9_a_worker_three_times_during_a_stream(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config, workers=2)
    with supervised_gateway(config, workers=2) as supervisor:
        stream = Stream(stack_config, "KLL", vins=200, per_vin=100, rate=2000)
        for _ in range(3):
            time.sleep(3)
            victim = supervisor.handles[0]
            pid = victim.pid
            assert pid is not None
            assert victim.running
            os.kill(pid, signal.SIGKILL)
            eventually(
                lambda victim=victim, pid=pid: victim.pid != pid and victim.running,  # type: ignore[misc]
                15,
                "the restart",
            )
        published = stream.finish()
        assert supervisor.handles[0].restarts == 3
        check_all_arrived(
            settings.kafka_bootstrap_servers(), topics.telemetry, published, "kill -9 x3"
        )


KAFKA_DOWN_S = 12  # no gateway timeout lies between this and longer stops
WORKER_AWAY_S = 8


def test_kafka_stopped_during_a_stream(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config, workers=1)
    with supervised_gateway(config, workers=1) as supervisor:
        stream = Stream(settings, "KFK", vins=300, per_vin=40, rate=700)  # 17 s: past the stop
        time.sleep(5)
        try:
            local_stack.stop_component("kafka-1")
            time.sleep(KAFKA_DOWN_S)
            assert supervisor.handles[0].running  # waited, did not crash or drop
        finally:  # whatever failed, the session's Kafka runs again for the next tests
            local_stack.start_component("kafka-1")
        published = stream.finish()
        check_all_arrived(
            settings.kafka_bootstrap_servers(),
            topics.telemetry,
            published,
            f"Kafka down {KAFKA_DOWN_S} s",
        )


def test_two_workers_one_killed_and_away_for_a_while(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config, workers=2)
    workers = [start_worker(config, 0), start_worker(config, 1)]
    try:
        wait_ready(settings, [0, 1])
        stream = Stream(stack_config, "TWW", vins=200, per_vin=80, rate=1000)
        time.sleep(3)
        workers[1].kill()
        workers[1].wait(10)
        time.sleep(WORKER_AWAY_S)
        workers[1] = start_worker(config, 1)
        wait_ready(settings, [1])
        published = stream.finish()
        check_all_arrived(
            settings.kafka_bootstrap_servers(),
            topics.telemetry,
            published,
            f"1 of 2 away {WORKER_AWAY_S} s",
        )
    finally:
        for worker in workers:
            stop_worker(worker)


@pytest.mark.parametrize("drain", [False, True], ids=["stop-keeps-session", "drain-leaves"])
def test_graceful_stop_loses_nothing(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings, drain: bool
) -> None:
    """SIGTERM keeps the session (a lone worker restarting loses nothing); drain hands over."""
    config, settings, topics = gateway_config(tmp_path, stack_config, workers=2)
    stay = start_worker(config, 0)
    leaving = start_worker(config, 1, drain_on_exit=drain)
    try:
        wait_ready(settings, [0, 1])
        stream = Stream(stack_config, "GRC", vins=100, per_vin=100, rate=1000)
        time.sleep(3)
        leaving.terminate()
        assert leaving.wait(40) == 0
        if not drain:
            stop_worker(stay)  # nobody left: the broker must queue for both sessions
            time.sleep(3)
            stay = start_worker(config, 0)
            leaving = start_worker(config, 1, drain_on_exit=True)
            wait_ready(settings, [0, 1])
        published = stream.finish()
        check_all_arrived(
            settings.kafka_bootstrap_servers(),
            topics.telemetry,
            published,
            "drain" if drain else "stop and restart",
        )
    finally:
        stop_worker(stay)
        stop_worker(leaving)
