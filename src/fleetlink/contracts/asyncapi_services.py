"""The AsyncAPI part of the cloud services' topics: features on demand (``fleet.payments``,
``fleet.purchases``, ``fleet.entitlements``) and OTA campaigns (``fleet.campaign-requests``,
``fleet.campaigns``, ``fleet.campaign-vehicles``), merged into the document by
``contracts.asyncapi``."""

from __future__ import annotations

from typing import Any

import msgspec

from fleetlink.contracts.campaigns import (
    Campaign,
    CampaignVehicle,
    ControlCampaign,
    CreateCampaign,
)
from fleetlink.contracts.purchases import Entitlement, ProviderEvent, Purchase, PurchaseRequested
from fleetlink.contracts.topics import KafkaTopic

Section = dict[str, Any]

_CHANNELS = (
    (
        "kafkaPayments",
        KafkaTopic.PAYMENTS,
        (PurchaseRequested, ProviderEvent),
        "purchase id",
        "The API's purchase requests and the provider's signed webhook events, as received "
        "(``record``: requested or provider); the purchase processor reads them",
    ),
    (
        "kafkaPurchases",
        KafkaTopic.PURCHASES,
        (Purchase,),
        "purchase id",
        "Each purchase's lifecycle with every step; compacted; the purchase processor writes "
        "it in Kafka transactions, the API and the refunder read it",
    ),
    (
        "kafkaEntitlements",
        KafkaTopic.ENTITLEMENTS,
        (Entitlement,),
        "{vin}/{feature}",
        "What each car may use; compacted; written with the purchase in one transaction; the "
        "activator turns each version into a feature command",
    ),
    (
        "kafkaCampaignRequests",
        KafkaTopic.CAMPAIGN_REQUESTS,
        (CreateCampaign, ControlCampaign),
        "campaign id",
        "Fleet admins' OTA requests as received (``type``: create or control: approve, pause, "
        "resume, abort, next-group); the campaign orchestrator reads them",
    ),
    (
        "kafkaCampaigns",
        KafkaTopic.CAMPAIGNS,
        (Campaign,),
        "campaign id",
        "Each OTA campaign's definition, state, groups with their counts and history; "
        "compacted; written by the orchestrator only",
    ),
    (
        "kafkaCampaignVehicles",
        KafkaTopic.CAMPAIGN_VEHICLES,
        (CampaignVehicle,),
        "{campaign}/{vin}",
        "Desired vs reported version of each car in a campaign, with its rollout state; "
        "compacted; written by the orchestrator only",
    ),
)


def service_channels(ref_template: str) -> tuple[Section, Section, Section, Section]:
    """(schemas, messages, channels, operations) of the services' topics."""
    models = [model for _, _, group, _, _ in _CHANNELS for model in group]
    _, schemas = msgspec.json.schema_components(models, ref_template=ref_template)
    messages: Section = {}
    channels: Section = {}
    operations: Section = {}
    for channel_id, topic, group, key, summary in _CHANNELS:
        for model in group:
            messages[model.__name__] = {
                "name": model.__name__,
                "title": model.__name__,
                "summary": summary,
                "contentType": "application/json",
                "payload": {"$ref": ref_template.format(name=model.__name__)},
                "bindings": {"kafka": {"key": {"type": "string", "description": key}}},
            }
        channels[channel_id] = {
            "address": str(topic),
            "messages": {
                model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}
                for model in group
            },
            "servers": [{"$ref": "#/servers/kafka"}],
            "bindings": {"kafka": {"topic": str(topic)}},
        }
        operations[f"consume{channel_id.removeprefix('kafka')}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": summary,
        }
    return schemas, messages, channels, operations
