"""``fleetlink topics``: the platform's Kafka topics."""

from __future__ import annotations

import typer
from rich.table import Table

from fleetlink.adapters.kafka.admin import describe_topics, ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.cli.common import console, settings_from
from fleetlink.contracts.topics import spec_of
from fleetlink.settings import Settings

app = typer.Typer(help="The platform's Kafka topics.", no_args_is_help=True)


def ensure_platform_topics(settings: Settings) -> list[str]:
    """Create the missing contract topics on every cluster of the platform (edge and cloud
    alike, with equal partition counts: MirrorMaker 2 keeps each record's partition)."""
    created = []
    for site in settings.sites():
        names = ensure_topics(
            KafkaClients.of(settings.at_site(site)),
            settings.topic_map(),
            partitions=settings.kafka.topic_partitions,
            replication_factor=settings.kafka.topic_replication_factor,
        )
        created += names if len(settings.sites()) == 1 else [f"{n} ({site})" for n in names]
    return created


def topics_table(settings: Settings) -> Table:
    topics = settings.topic_map()
    table = Table(title="Kafka topics of the contract", title_justify="left")
    table.add_column("topic", no_wrap=True)  # names are what people copy: never cut
    table.add_column("key", overflow="fold")
    for column in ("parts", "RF", "ISR", "cleanup", "written"):
        table.add_column(column, no_wrap=True)
    for info in describe_topics(KafkaClients.of(settings), topics):
        topic = topics.topic_of(info.name)
        spec = spec_of(topic) if topic is not None else None
        table.add_row(
            info.name,
            spec.key if spec else "",
            str(info.partitions),
            str(info.replication_factor),
            info.min_insync_replicas,
            info.cleanup_policy,
            spec.written_at if spec else "",
        )
    return table


@app.command("ensure")
def ensure(ctx: typer.Context) -> None:
    """Create the contract's topics that are missing (compacted where the contract says so)."""
    settings = settings_from(ctx)
    created = ensure_platform_topics(settings)
    console.print(f"Created {len(created)} topic(s): {', '.join(created) or 'all existed'}")


@app.command("list")
def list_topics(ctx: typer.Context) -> None:
    """Show the contract's topics as they are in Kafka."""
    console.print(topics_table(settings_from(ctx)))
