"""Hazards reach the cars: the hazards app and a gateway worker as real processes, the warning a
retained MQTT 5 message in the hazard's cell that expires with it and goes when it is cleared."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from fleetlink.contracts.geo import cell_of
from fleetlink.contracts.hazards import Hazard, HazardState
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.apps import app_platform, now_ms, running_app, send_event, wait_assigned
from tests.support.gateway import gateway_config, supervised_gateway
from tests.support.polling import eventually
from tests.support.stack import mqtt_client

SPOT = (52.47, 13.52)
VALIDITY_S = 5.0


def test_a_hazard_is_a_retained_warning_until_it_is_cleared(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, _ = gateway_config(tmp_path, stack_config)
    platform = app_platform(
        tmp_path,
        settings,
        own_topics=False,
        hazards={"rules": {"emergency-brake": {"validity_s": VALIDITY_S}}},
    )
    cell = cell_of(*SPOT)
    warnings = MqttTopic.geo_warnings_filter(cell)
    with supervised_gateway(config, 1), running_app(platform, "hazards") as app:
        wait_assigned(platform, "hazards")
        with mqtt_client(stack_config, subscribe=warnings) as (_, inbox):
            producer = platform.producer()
            events = platform.topic(KafkaTopic.EVENTS)
            for n in range(3):
                send_event(
                    producer, events, f"WRN0000000000000{n}", "harsh-braking", now_ms(), SPOT
                )
            producer.flush(10)
            sent = time.monotonic()
            [live, *_] = inbox.wait_for(1, 30)
            delay = time.monotonic() - sent
        hazard = msgspec.json.decode(live.payload, type=Hazard)
        assert hazard.state is HazardState.CONFIRMED
        assert live.topic == MqttTopic.geo_warning(cell, hazard.hazard_id)
        assert 1 <= live.properties.MessageExpiryInterval <= VALIDITY_S  # type: ignore[union-attr]
        print(f"report -> warning: {delay * 1000:.0f} ms, the app's start included")
        # a car arriving later hears it, retained
        with mqtt_client(stack_config, subscribe=warnings) as (_, late):
            [retained] = late.wait_for(1, 10)
        assert retained.retain
        assert msgspec.json.decode(retained.payload, type=Hazard).hazard_id == hazard.hazard_id
        # ticks expire it; the cleared record removes the retained warning
        eventually(
            lambda: any(h.state is HazardState.CLEARED for h in platform.hazards()),
            30,
            "the hazard cleared",
        )
        eventually(lambda: _retained(stack_config, warnings) == [], 15, "the warning withdrawn")
        assert app.poll() is None


def _retained(settings: Settings, topic: str) -> list[bytes]:
    with mqtt_client(settings, subscribe=topic) as (_, inbox):
        return [m.payload for m in inbox.wait_for(1, 1.5)]
