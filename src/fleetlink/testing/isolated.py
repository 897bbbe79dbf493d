"""A platform on Kafka topics, a share group and client ids of its own.

For benchmarks, tests and trial runs beside a production platform on the same broker and
cluster: every contract topic under the prefix ``<run>.`` (the one topic list decides which).
"""

from __future__ import annotations

from typing import Final

from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings


def isolated_gateway_settings(
    base: Settings,
    run: str,
    *,
    workers: int = 1,
    metrics_port: int = 0,
    receive_maximum: int | None = None,
) -> Settings:
    gateway = base.gateway.model_copy(
        update={
            "workers": workers,
            "client_id_prefix": f"gw-{run}",
            "share_group": f"gw-{run}",
            "metrics_port": metrics_port,
            "receive_maximum": receive_maximum or base.gateway.receive_maximum,
        }
    )
    tracker = base.tracker.model_copy(update={"group_id": f"tracker-{run}"})
    purchases = base.purchases.model_copy(
        update={"group_id": f"purchases-{run}", "transactional_id": f"purchases-{run}-0"}
    )
    campaigns = base.campaigns.model_copy(update={"group_id": f"campaigns-{run}"})
    topics = base.topics.model_copy(update={"prefix": base.topic_map().prefixed(run).prefix})
    return base.model_copy(
        update={
            "gateway": gateway,
            "tracker": tracker,
            "topics": topics,
            "purchases": purchases,
            "campaigns": campaigns,
        }
    )


# What the gateway, the downlink, the tracker and the API read and write: the topics a test
# platform needs (creating all of the contract's for every test would cost the cluster).
RUNNING_TOPICS: Final = (
    KafkaTopic.TELEMETRY,
    KafkaTopic.EVENTS,
    KafkaTopic.PRESENCE,
    KafkaTopic.DLQ,
    KafkaTopic.COMMANDS,
    KafkaTopic.COMMAND_RESPONSES,
    KafkaTopic.COMMAND_DISPATCH,
    KafkaTopic.COMMAND_STATUS,
    KafkaTopic.GRANTS,
    KafkaTopic.AUDIT,
    KafkaTopic.HAZARDS,
    KafkaTopic.PARKING,
    KafkaTopic.VEHICLE_STATE,
    KafkaTopic.TRIPS,
    KafkaTopic.GEOFENCES,
    KafkaTopic.GEOFENCE_EVENTS,
    KafkaTopic.ALERTS,
    KafkaTopic.ALERT_ACKS,
    KafkaTopic.SERVICES,
    KafkaTopic.REPLICATION_ALERTS,
    KafkaTopic.PAYMENTS,
    KafkaTopic.PURCHASES,
    KafkaTopic.ENTITLEMENTS,
    KafkaTopic.CAMPAIGN_REQUESTS,
    KafkaTopic.CAMPAIGNS,
    KafkaTopic.CAMPAIGN_VEHICLES,
)
