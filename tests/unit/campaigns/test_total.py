"""The campaign orchestrator is total: any record of its inputs is taken or skipped with a
reason (a report that is not a software report is only logged); nothing else escapes."""

from __future__ import annotations

import logging

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetlink.campaigns.orchestrator import Orchestrator
from fleetlink.campaigns.rollout import Outcome
from fleetlink.contracts import headers as h
from fleetlink.contracts.campaigns import (
    CampaignAction,
    CampaignSpec,
    ControlCampaign,
    CreateCampaign,
    SoftwareReport,
    SoftwareStep,
)
from fleetlink.contracts.models import Event
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings, load_settings
from tests.support.fakes import FakeMessage
from tests.support.strategies import HEADERS, KEYS, PROPERTY, RAW_VALUES, VIN, with_bad_bytes

NOWHERE = "127.0.0.1:9"  # the discard port: clients are built, nothing is ever sent
SPEC = CampaignSpec(name="n", image="fl-sedan-os", version="2026.48")
REPORT = Event(
    ts=1, seq=1, data=msgspec.to_builtins(SoftwareReport(SoftwareStep.FAILED, "2026.40", "c1"))
)
VALID = st.sampled_from(
    [
        msgspec.json.encode(CreateCampaign("c1", SPEC, "alice", 1)),
        msgspec.json.encode(ControlCampaign("c1", CampaignAction.APPROVE, "bob", 2)),
        msgspec.json.encode(REPORT),
    ]
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("state")
    return load_settings(
        kafka={"bootstrap_servers": NOWHERE},
        stack={"state_dir": str(state)},
        runtime={"journal_dir": str(state / "journal")},
    )


@pytest.fixture(scope="module")
def orchestrator(settings: Settings) -> Orchestrator:
    return Orchestrator(settings, logging.getLogger("test.campaigns"))


@st.composite
def records(draw: st.DrawFn, topics: list[str]) -> FakeMessage:
    value = RAW_VALUES | VALID | with_bad_bytes(VALID.map(msgspec.json.decode))
    event = st.just([(h.MQTT_TOPIC, f"vehicles/{VIN}/events/software-state".encode())])
    return FakeMessage(
        draw(st.sampled_from(topics)),
        draw(st.just(b"c1") | st.just(b"ota-c1-" + VIN.encode() + b"-1") | KEYS),
        draw(value),
        draw(HEADERS | event),
        _offset=draw(st.integers(min_value=0, max_value=10**6)),
    )


@given(data=st.data())
@PROPERTY
def test_the_orchestrator_takes_any_record_or_skips_it_with_a_reason(
    orchestrator: Orchestrator, settings: Settings, data: st.DataObject
) -> None:
    inputs = settings.topic_map().names(
        (
            KafkaTopic.CAMPAIGN_REQUESTS,
            KafkaTopic.EVENTS,
            KafkaTopic.COMMAND_STATUS,
            KafkaTopic.PRESENCE,
            KafkaTopic.VEHICLE_STATE,
        )
    )
    message = data.draw(records(inputs))
    skipped = orchestrator.skipped.total
    out = orchestrator.apply(message)  # type: ignore[arg-type]
    assert isinstance(out, Outcome)
    assert orchestrator.skipped.total in (skipped, skipped + 1)


def test_a_request_that_is_not_one_is_skipped_and_a_real_one_is_taken(
    orchestrator: Orchestrator, settings: Settings
) -> None:
    requests = settings.topic_map()[KafkaTopic.CAMPAIGN_REQUESTS]
    skipped = orchestrator.skipped.total
    orchestrator.apply(FakeMessage(requests, b"c2", b'{"type": "create"}'))  # type: ignore[arg-type]
    assert orchestrator.skipped.total == skipped + 1
    created = msgspec.json.encode(CreateCampaign("c2", SPEC, "alice", 1))
    out = orchestrator.apply(FakeMessage(requests, b"c2", created))  # type: ignore[arg-type]
    assert list(out.campaigns) == ["c2"]
