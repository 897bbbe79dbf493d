"""What ``fleetlink stack status`` shows: each process of the stack, whether it runs and
answers its protocol, and each MirrorMaker 2's replication lag."""

from __future__ import annotations

import msgspec

from fleetlink.adapters import runner
from fleetlink.contracts.topics import Site
from fleetlink.stack.edge_cloud import LINK
from fleetlink.stack.link import LinkMode
from fleetlink.stack.local import MOSQUITTO, LocalStack
from fleetlink.stack.ports import LOOPBACK, port_accepts
from fleetlink.stack.probes import kafka_broker_ids

# a mirror "answers" while the beats it copies are younger than this
MIRROR_ANSWER_LAG_S = 30.0


class ComponentStatus(msgspec.Struct, frozen=True):
    name: str
    pid: int
    address: str
    running: bool
    answers: bool
    log: str
    lag_s: float | None = None  # a mirror's replication lag (age of the newest copied beat)


def stack_status(stack: LocalStack) -> list[ComponentStatus]:
    """Every recorded process: whether its pid runs and whether it answers its protocol."""
    state = stack.state()
    if state is None:
        return []
    brokers = {c.site: kafka_broker_ids(c.bootstrap_servers()) for c in stack.clusters}
    rows = []
    for record in state.processes:
        running = runner.is_running(record)
        cluster = stack.cluster_of(record.name)
        lag = None
        address = f"{LOOPBACK}:{record.port}"
        if record.name == MOSQUITTO:
            answers = running and stack.mqtt_answers()
        elif record.name == LINK:
            answers = running and stack.link.mode() is LinkMode.UP
            address = f"{LOOPBACK}:{record.port} ({stack.link.mode()})"
        elif cluster is not None:
            node_id = cluster.node_id(record.name)
            answers = running and node_id in brokers[cluster.site] and port_accepts(record.port)
        else:
            target = Site(record.name.removeprefix("mirror-"))
            source = target.other
            lag = stack.link.lag_s(source)
            answers = running and lag is not None and lag < MIRROR_ANSWER_LAG_S
            address = f"{source.value} -> {target.value}"
        rows.append(
            ComponentStatus(
                name=record.name,
                pid=record.pid,
                address=address,
                running=running,
                answers=answers,
                log=record.log,
                lag_s=lag,
            )
        )
    return rows
