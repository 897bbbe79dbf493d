"""What the local stack runs right now, kept in ``<state_dir>/stack.json`` between CLI calls."""

from __future__ import annotations

from pathlib import Path

import msgspec

from fleetlink.adapters.runner import ProcessRecord

STATE_FILE = "stack.json"


class StackState(msgspec.Struct):
    """Processes started by ``stack up``; ``down`` stops exactly these."""

    cluster_id: str
    brokers: int
    processes: list[ProcessRecord] = []
    topology: str = "single"

    def kafka(self) -> list[ProcessRecord]:
        """The Kafka nodes of every cluster (``kafka-N``, ``cloud-kafka-N``)."""
        return [p for p in self.processes if p.name.rpartition("-")[0].endswith("kafka")]

    def mirrors(self) -> list[ProcessRecord]:
        return [p for p in self.processes if p.name.startswith("mirror-")]

    def mosquitto(self) -> list[ProcessRecord]:
        return [p for p in self.processes if p.name == "mosquitto"]


def load_state(state_dir: Path) -> StackState | None:
    path = state_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=StackState)
    except msgspec.MsgspecError:
        return None


def save_state(state_dir: Path, state: StackState) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(msgspec.json.format(msgspec.json.encode(state), indent=2))
    temporary.replace(path)


def clear_state(state_dir: Path) -> None:
    (state_dir / STATE_FILE).unlink(missing_ok=True)
