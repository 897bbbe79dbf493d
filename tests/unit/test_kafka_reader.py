"""The whole-topic reader connects with the cluster's credentials, not a bare address."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from fleetlink.commands.tracker import Tracker
from fleetlink.config import load_settings
from fleetlink.kafka import reader
from fleetlink.kafka.reader import reader_config


class _RecordedError(Exception):
    """Raised by the stand-in consumer once it has seen its settings."""


def test_a_reader_takes_the_whole_client_configuration() -> None:
    config = reader_config({"bootstrap.servers": "k:9093", "security.protocol": "SASL_SSL"})
    assert config["security.protocol"] == "SASL_SSL"
    assert config["enable.auto.commit"] is False
    assert reader_config("k:9092")["bootstrap.servers"] == "k:9092"
    assert reader_config("k:9092")["group.id"] != reader_config("k:9092")["group.id"]


def test_the_tracker_restores_its_state_with_sasl_and_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        stack={"state_dir": tmp_path},
        kafka={
            "bootstrap_servers": "127.0.0.1:9",  # the discard port: nothing is ever sent
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "fleetlink",
            "sasl_password": "secret",
        },
    )
    seen: list[dict[str, Any]] = []

    def consumer(config: dict[str, Any]) -> None:
        seen.append(config)
        raise _RecordedError

    tracker = Tracker(settings, logging.getLogger("test.tracker"))
    monkeypatch.setattr(reader, "Consumer", consumer)
    with pytest.raises(_RecordedError):
        tracker._restore()
    assert seen[0]["security.protocol"] == "SASL_PLAINTEXT"
    assert seen[0]["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (seen[0]["sasl.username"], seen[0]["sasl.password"]) == ("fleetlink", "secret")
