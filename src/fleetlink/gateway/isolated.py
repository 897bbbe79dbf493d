"""A gateway on Kafka topics, a share group and client ids of its own.

For benchmarks, tests and trial runs beside a production gateway on the same broker and cluster:
the default mappings, each pointed at ``<run>.<mapping name>``, and its own dead-letter topic.
"""

from __future__ import annotations

from fleetlink.config import Settings, default_mappings


def isolated_gateway_settings(
    base: Settings,
    run: str,
    *,
    workers: int = 1,
    metrics_port: int = 0,
    receive_maximum: int | None = None,
) -> Settings:
    mappings = [
        rule.model_copy(update={"kafka_topic": f"{run}.{rule.name}"}) for rule in default_mappings()
    ]
    gateway = base.gateway.model_copy(
        update={
            "workers": workers,
            "client_id_prefix": f"gw-{run}",
            "share_group": f"gw-{run}",
            "metrics_port": metrics_port,
            "mappings": mappings,
            "dlq_topic": f"{run}.dlq",
            "commands_topic": f"{run}.commands",
            "command_status_topic": f"{run}.command-status",
            "command_dispatch_topic": f"{run}.command-dispatch",
            "receive_maximum": receive_maximum or base.gateway.receive_maximum,
        }
    )
    tracker = base.tracker.model_copy(update={"group_id": f"tracker-{run}"})
    api = base.api.model_copy(
        update={"grants_topic": f"{run}.grants", "audit_topic": f"{run}.audit"}
    )
    return base.model_copy(update={"gateway": gateway, "tracker": tracker, "api": api})


def isolated_topics(settings: Settings) -> list[str]:
    """Every Kafka topic the gateway uses: one per mapping, dead letters, commands, status."""
    gateway = settings.gateway
    return [rule.kafka_topic for rule in gateway.mappings] + [
        gateway.dlq_topic,
        gateway.commands_topic,
        gateway.command_status_topic,
        gateway.command_dispatch_topic,
        settings.api.grants_topic,
        settings.api.audit_topic,
    ]
