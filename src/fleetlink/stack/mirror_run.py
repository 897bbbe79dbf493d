"""The MirrorMaker 2 processes of the edge-cloud stack, and the replication lag they leave.

Each MM2 process runs in dedicated mode next to its target cluster (``--clusters <target>``).
Its heartbeat connector writes a beat into the target's ``heartbeats`` topic every
``heartbeat_s``; the other direction copies those beats back as ``<source>.heartbeats``, keeping
each record's timestamp. The age of the newest ``<source>.heartbeats`` record on the target is
therefore how far the target trails the source: the replication lag of that direction.
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from fleetlink.adapters import runner
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.runner import ProcessRecord
from fleetlink.contracts.topics import Site
from fleetlink.mirror import HEARTBEATS, remote_heartbeats
from fleetlink.stack import kafka

MIRROR_CLASS = "org.apache.kafka.connect.mirror.MirrorMaker"


def mirror_name(target: Site) -> str:
    """The stack's name of the MM2 process writing into ``target``."""
    return f"mirror-{target.value}"


def mirror_argv(
    java: Path, libs: Path, properties: Path, log4j: Path, target: Site, heap_mb: int
) -> list[str]:
    return [
        str(java),
        f"-Xms{min(heap_mb, 128)}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        kafka.classpath(libs),
        MIRROR_CLASS,
        str(properties),
        "--clusters",
        target.value,
    ]


def start_mirror(
    java: Path,
    libs: Path,
    target: Site,
    *,
    properties: str,
    directory: Path,
    logs_dir: Path,
    heap_mb: int,
    port: int,
    die_with_parent: bool,
) -> ProcessRecord:
    """Write ``properties`` as ``<directory>/mm2-<target>.properties`` and start the MM2
    process writing into ``target``; its log is ``<logs_dir>/mirror-<target>.log``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / f"mm2-{target.value}.properties"
    config.write_text(properties)
    name = mirror_name(target)
    return runner.spawn(
        name,
        mirror_argv(java, libs, config, kafka.write_log4j(directory), target, heap_mb),
        log=logs_dir / f"{name}.log",
        marker=config,
        port=port,
        die_with_parent=die_with_parent,
    )


def prepare_heartbeats(bootstrap_servers: str, timeout: float = 10.0) -> None:
    """Create ``heartbeats`` as MM2 would (one partition, compacted) before MM2 starts, so the
    other direction finds it at its first topic scan, not a refresh interval later."""
    admin = KafkaClients.at(bootstrap_servers).admin()
    topic = NewTopic(HEARTBEATS, num_partitions=1, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([topic], request_timeout=timeout).values():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise


def heartbeat_age_s(target_bootstrap: str, source: Site, timeout: float = 3.0) -> float | None:
    """Seconds since the newest beat of ``source`` was made, as seen on the target; None when
    no beat has crossed yet (or the target does not answer)."""
    consumer = KafkaClients.at(target_bootstrap).reader("mirror-lag")
    partition = TopicPartition(remote_heartbeats(source), 0)
    try:
        try:
            _, high = consumer.get_watermark_offsets(partition, timeout=timeout)
        except KafkaException:
            return None
        if high <= 0:
            return None
        consumer.assign([TopicPartition(partition.topic, 0, high - 1)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = consumer.poll(0.2)
            if record is None or record.error() is not None:
                continue
            _, stamp_ms = record.timestamp()
            return max(0.0, time.time() - float(stamp_ms) / 1000)
        return None
    finally:
        consumer.close()
