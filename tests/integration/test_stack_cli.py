"""`fleetlink stack` as a user runs it: up, status, logs, down, restart with data kept."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from confluent_kafka import Producer

from fleetlink.adapters.runner import ProcessRecord, is_running
from fleetlink.contracts import MqttTopic
from fleetlink.stack import LocalStack
from tests.support.stack import (
    consume,
    mqtt_client,
    processes_using,
    run_cli,
    stack_env,
    stack_settings,
)

VIN = "WVWZZZ1JZXW000301"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def test_stack_up_status_logs_down_leaves_no_process_and_up_again_keeps_the_data(
    tmp_path: Path,
) -> None:
    """Kafka records and retained MQTT messages are on disk, not only in memory."""
    settings = stack_settings(tmp_path / "state")
    env = {**os.environ, **stack_env(settings)}
    pids: list[int] = []
    try:
        up = run_cli("stack", "up", env=env)
        assert up.returncode == 0, up.stderr
        state = json.loads((tmp_path / "state" / "stack.json").read_text())
        pids = [p["pid"] for p in state["processes"]]
        assert {p["name"] for p in state["processes"]} == {"kafka-1", "mosquitto"}
        assert all(pid_alive(pid) for pid in pids)
        bootstrap = LocalStack(settings.stack).bootstrap_servers()
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        producer.produce("test.persisted", key="k", value="kept")
        assert producer.flush(30) == 0
        with mqtt_client(settings, VIN) as (client, _):
            topic = MqttTopic.presence(VIN)
            client.publish(topic, "online", qos=1, retain=True).wait_for_publish(10)

        status = run_cli("stack", "status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        for name in ("kafka-1", "mosquitto"):
            row = next(line for line in status.stdout.splitlines() if name in line)
            assert row.count("yes") == 2, row  # running and answering

        again = run_cli("stack", "up", env=env)  # idempotent: nothing new is started
        assert again.returncode == 0
        state_again = json.loads((tmp_path / "state" / "stack.json").read_text())
        assert [p["pid"] for p in state_again["processes"]] == pids

        logs = run_cli("stack", "logs", "kafka-1", "-n", "200", env=env)
        assert "Kafka Server started" in logs.stdout

        down = run_cli("stack", "down", env=env)
        assert down.returncode == 0, down.stderr
        assert "kafka-1" in down.stdout
        assert "mosquitto" in down.stdout
        assert not any(pid_alive(pid) for pid in pids)
        assert processes_using(tmp_path / "state") == []
        assert run_cli("stack", "status", env=env).returncode == 1

        assert run_cli("stack", "up", env=env).returncode == 0
        state = json.loads((tmp_path / "state" / "stack.json").read_text())
        pids = [p["pid"] for p in state["processes"]]
        records = consume(bootstrap, "test.persisted", expected=1)
        assert [r.value() for r in records] == [b"kept"]
        with mqtt_client(settings, subscribe="vehicles/+/presence") as (_, inbox):
            retained = inbox.wait_for(1, timeout=10)
        assert [m.payload for m in retained] == [b"online"]
        assert run_cli("stack", "down", env=env).returncode == 0
        assert not any(pid_alive(pid) for pid in pids)
    finally:
        for pid in pids:  # a failed assertion must not leave brokers behind
            if pid_alive(pid):
                os.kill(pid, 9)


def test_taken_port_is_reported_with_the_key_to_change(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "state")
    env = {**os.environ, **stack_env(settings)}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.stack.mqtt_port))
        squatter.listen()
        result = run_cli("stack", "up", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"port {settings.stack.mqtt_port}" in result.stderr
    assert "stack.mqtt_port" in result.stderr
    assert not (tmp_path / "state" / "stack.json").exists()


def test_a_reused_pid_is_never_signalled() -> None:
    """`down` checks the command line: a pid now used by another program is left alone."""
    stranger = ProcessRecord(
        name="kafka-1", pid=os.getpid(), marker="/no/such/server.properties", log="", port=1
    )
    assert not is_running(stranger)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"FLEETLINK_STACK__MQTT_PORT": "abc"}, "stack.mqtt_port"),
        ({"FLEETLINK_KAFKA__BOOTSTRAP_SERVERS": "no-port"}, "kafka.bootstrap_servers"),
        ({"FLEETLINK_STACK__BROKERS": "2"}, "stack.brokers"),
    ],
)
def test_bad_config_stops_the_cli_with_one_line(env: dict[str, str], key: str) -> None:
    result = run_cli("stack", "status", env={**os.environ, **env})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: invalid configuration: {key}:")
    assert "Traceback" not in result.stderr


def test_bad_config_file_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "fleetlink.toml"
    config.write_text("[stack]\nmqtt_prot = 1883\n")
    result = run_cli("--config", str(config), "stack", "status", env=dict(os.environ))
    assert result.returncode == 1
    assert "stack.mqtt_prot: unknown setting" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "state")
    env = {**os.environ, **stack_env(settings), "PATH": str(tmp_path / "empty")}
    env.pop("JAVA_HOME", None)
    result = run_cli("stack", "up", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: Java 17+ is needed to run Kafka and was not found: install it "
        "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
    ]
