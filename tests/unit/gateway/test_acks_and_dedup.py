from fleetlink.adapters.kafka.dedup import Deduplicator, message_id
from fleetlink.gateway.acks import OrderedAcks


def test_acks_go_out_in_arrival_order_whatever_order_kafka_answers() -> None:
    acks = OrderedAcks()
    batches: list[list[tuple[int, int]]] = []
    slots = [acks.track(mid, 1) for mid in (10, 11, 12, 13)]

    assert acks.complete([slots[2]]) == 0  # 10 and 11 are still at Kafka
    assert acks.complete([slots[1]]) == 0
    assert acks.send_ready(batches.append) == 0
    assert batches == []
    assert acks.complete([slots[0]]) == 3
    assert len(acks) == 4  # ready, not sent yet
    assert acks.send_ready(batches.append) == 3
    assert batches == [[(10, 1), (11, 1), (12, 1)]]  # one batch, one write
    assert len(acks) == 1
    assert acks.complete([slots[3]]) == 1
    assert acks.send_ready(batches.append) == 1
    assert batches[-1] == [(13, 1)]
    assert len(acks) == 0


def test_deliveries_from_an_old_connection_are_never_acknowledged() -> None:
    acks = OrderedAcks()
    batches: list[list[tuple[int, int]]] = []
    old = acks.track(1, 1)
    acks.new_connection()  # the broker will redeliver packet 1; its id may now mean another message
    fresh = acks.track(1, 1)
    assert acks.complete([old]) == 0
    assert acks.send_ready(batches.append) == 0
    assert acks.complete([fresh]) == 1
    assert acks.send_ready(batches.append) == 1
    assert batches == [[(1, 1)]]


def test_acks_ready_before_a_reconnect_are_not_sent_after_it() -> None:
    acks = OrderedAcks()
    batches: list[list[tuple[int, int]]] = []
    assert acks.complete([acks.track(7, 1)]) == 1
    acks.new_connection()  # the connection dropped between the delivery and the next batch
    assert acks.send_ready(batches.append) == 0
    assert batches == []
    assert len(acks) == 0


def test_deduplicator_counts_and_forgets_the_oldest() -> None:
    dedup = Deduplicator(capacity=3)
    assert [dedup.first_time(i) for i in ("a", "b", "a", "c", "d")] == [
        True,
        True,
        False,
        True,
        True,
    ]
    assert dedup.duplicates == 1
    assert len(dedup) == 3
    assert dedup.first_time("b")  # evicted: "a" was refreshed, "b" was the oldest
    assert not dedup.first_time("d")


def test_message_id_header_is_read() -> None:
    assert message_id([("x", b"1"), ("fl.msg_id", b"abc")]) == "abc"
    assert message_id(None) is None
    assert message_id([("fl.msg_id", None)]) is None


def test_settle_marks_what_kafka_reported_and_sends_it_in_arrival_order() -> None:
    acks = OrderedAcks()
    batches: list[list[tuple[int, int]]] = []
    first, second, third = (acks.track(mid, 1) for mid in (1, 2, 3))
    acks.delivered(third)
    acks.delivered(first)
    assert acks.settle(batches.append) == 1  # 2 is still at Kafka: 3 waits behind it
    acks.delivered(second)
    assert acks.settle(batches.append) == 2
    assert batches == [[(1, 1)], [(2, 1), (3, 1)]]
    assert len(acks) == 0
