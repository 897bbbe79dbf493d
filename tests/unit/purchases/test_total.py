"""The purchase processor and the API's purchase view are total: any record of their topics
is taken or skipped (the provider's word dead-lettered) with a reason, nothing else escapes."""

from __future__ import annotations

import logging
import time

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.seams import KafkaSource
from fleetlink.contracts import headers as h
from fleetlink.contracts.codec import DlqReason
from fleetlink.contracts.purchases import FeatureKind, ProviderEvent, PurchaseRequested
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.purchases.processor import ProcessorPausedError, PurchaseProcessor
from fleetlink.purchases.read_model import PurchaseReadModel
from fleetlink.settings import Settings, load_settings
from tests.support.fakes import FakeMessage
from tests.support.strategies import HEADERS, KEYS, PROPERTY, RAW_VALUES, VIN, with_bad_bytes

NOWHERE = "127.0.0.1:9"  # the discard port: clients are built, nothing is ever sent
REQUEST = PurchaseRequested(
    purchase_id="p-1", vin=VIN, feature="performance-boost", owner="olga", amount=1,
    currency="eur", kind=FeatureKind.ONE_TIME, requested_at=1,
)  # fmt: skip
PAID = ProviderEvent(
    event_id="evt_1", type="payment_intent.succeeded", created=1, purchase_id="p-1",
    intent_id="pi_1", received_at=1, vin=VIN, feature="performance-boost",
)  # fmt: skip
VALID_PAYMENTS = st.sampled_from([msgspec.json.encode(REQUEST), msgspec.json.encode(PAID)])


class DeadLetters:
    """Stands in for the transactional producer: what would be written, kept."""

    open = False  # no transaction under way (the processor asks)

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, bytes]]] = []

    def produce(
        self, topic: str, key: object = None, value: object = None, headers: object = None
    ) -> None:
        self.records.append((topic, dict(headers or [])))  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        kafka={"bootstrap_servers": NOWHERE},
        runtime={"journal_dir": tmp_path_factory.mktemp("journal")},
    )


@pytest.fixture(scope="module")
def processor(settings: Settings) -> PurchaseProcessor:
    processor = PurchaseProcessor(settings, logging.getLogger("test.purchases"))
    sink = DeadLetters()
    processor._txn = sink  # type: ignore[assignment]
    processor._guard._producer = sink  # type: ignore[assignment]
    return processor


def inputs(settings: Settings) -> list[str]:
    return settings.topic_map().names(
        (KafkaTopic.PAYMENTS, KafkaTopic.COMMAND_STATUS, KafkaTopic.EVENTS)
    )


@st.composite
def records(draw: st.DrawFn, topics: list[str]) -> FakeMessage:
    value = RAW_VALUES | VALID_PAYMENTS | with_bad_bytes(VALID_PAYMENTS.map(msgspec.json.decode))
    headers = HEADERS | st.just([(h.MQTT_TOPIC, f"vehicles/{VIN}/events/feature-state".encode())])
    return FakeMessage(
        draw(st.sampled_from(topics)),
        draw(st.just(b"p-1") | KEYS),
        draw(value),
        draw(headers),
        _offset=draw(st.integers(min_value=0, max_value=10**6)),
    )


@given(data=st.data())
@PROPERTY
def test_the_processor_takes_any_record_or_skips_it_with_a_reason(
    processor: PurchaseProcessor, settings: Settings, data: st.DataObject
) -> None:
    message = data.draw(records(inputs(settings)))
    sink: DeadLetters = processor._txn  # type: ignore[assignment]
    skipped, dead = processor.skipped.total, len(sink.records)
    processor._apply(message)  # type: ignore[arg-type]
    assert processor.skipped.total in (skipped, skipped + 1)
    if processor.skipped.total > skipped and message.topic() == inputs(settings)[0]:
        topic, headers = sink.records[-1]
        assert len(sink.records) == dead + 1
        assert topic.endswith("fleet.dlq")
        assert DlqReason(headers[h.DLQ_REASON].decode())


def test_a_provider_event_for_no_car_is_dead_lettered(
    processor: PurchaseProcessor, settings: Settings
) -> None:
    lost = msgspec.structs.replace(PAID, event_id="evt_2", purchase_id="p-9", vin=None)
    message = FakeMessage(inputs(settings)[0], b"p-9", msgspec.json.encode(lost))
    sink: DeadLetters = processor._txn  # type: ignore[assignment]
    processor._apply(message)  # type: ignore[arg-type]
    assert sink.records[-1][1][h.DLQ_REASON] == b"schema"
    assert b"names no car" in sink.records[-1][1][h.DLQ_DETAIL]


@given(data=st.data())
@PROPERTY
def test_the_purchase_view_takes_any_record_or_skips_it(
    view: PurchaseReadModel, settings: Settings, data: st.DataObject
) -> None:
    skipped = view.skipped.total
    topics = settings.topic_map().names((KafkaTopic.PURCHASES, KafkaTopic.ENTITLEMENTS))
    message = data.draw(records(topics))
    news = view._take([message])  # type: ignore[list-item]
    assert isinstance(news, list)
    assert view.skipped.total == skipped + 1 - len(news)


@pytest.fixture(scope="module")
def view(settings: Settings) -> PurchaseReadModel:
    source = KafkaSource(KafkaClients.at(NOWHERE).reader())
    return PurchaseReadModel(settings, logging.getLogger("test.view"), source)


def test_a_processor_that_stood_still_longer_than_its_session_ends(
    processor: PurchaseProcessor,
) -> None:
    """Frozen (a GC pause, a stopped VM) past its group session, it may have a successor that
    holds its partitions and transactional id: it restarts rather than read on."""
    processor._last_step = time.monotonic()
    processor.step(timeout=0.01)  # a step right after the last one: nothing to say
    processor._last_step = time.monotonic() - 11
    with pytest.raises(ProcessorPausedError, match="stood still for 11 s"):
        processor.step(timeout=0.01)
