"""End-to-end confirmation, pure parts: the car's outbox, stamps, ranges, batches, the detector."""

from __future__ import annotations

import itertools

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from fleetlink.contracts.codec import encode
from fleetlink.contracts.delivery import Stamp, stamp_of, stamp_properties, to_ranges
from fleetlink.contracts.models import Delivered
from fleetlink.gateway.confirm import MAX_RANGES_PER_MESSAGE, Confirmations
from fleetlink.sim.truth import compare
from fleetlink.vehicle.agent import VehicleAgent
from fleetlink.vehicle.outbox import Outbox, Pending
from fleetlink.vehicle.state import VehicleState
from tests.support.strategies import PROPERTY, RAW_VALUES, VIN


def stamped(seq: int) -> Pending:
    return Pending("vehicles/x/telemetry", str(seq).encode(), seq=seq)


def send_all(outbox: Outbox, now: float) -> list[int]:
    """What the flush loop does: send the head, the broker acknowledges it, the next one."""
    sent = []
    while (pending := outbox.peek()) is not None:
        outbox.acknowledged(pending, now)
        sent.append(pending.seq)
    return sent


def test_without_confirmation_a_message_is_done_at_its_puback() -> None:
    outbox = Outbox(capacity=3)
    for n in range(1, 6):
        outbox.put(stamped(n))
    assert outbox.dropped == 2  # the oldest went, counted
    assert send_all(outbox, 1.0) == [3, 4, 5]
    assert len(outbox) == 0
    assert outbox.unconfirmed == 0


def test_with_confirmation_a_message_waits_for_the_platform() -> None:
    outbox = Outbox(confirmed=True)
    for n in range(1, 7):
        outbox.put(stamped(n))
    assert send_all(outbox, 1.0) == [1, 2, 3, 4, 5, 6]
    assert len(outbox) == 6  # acknowledged by the broker is not yet safe
    assert outbox.unconfirmed == 6
    # a worker confirms what it wrote: every other message (a shared subscription)
    assert outbox.confirm([(1, 1), (3, 3), (5, 5)], now=1.5) == 3
    assert outbox.confirm([(1, 1)], now=1.6) == 0  # twice is harmless
    assert sorted(outbox.lags) == [0.5, 0.5, 0.5]
    # the link dies: the rest goes again, in order, ahead of what was sampled meanwhile
    outbox.put(stamped(7))
    assert outbox.resend_awaiting() == 3
    assert send_all(outbox, 2.0) == [2, 4, 6, 7]
    assert outbox.resends == 3
    assert outbox.confirm([(2, 7)], now=2.5) == 4
    assert len(outbox) == 0
    assert outbox.confirmed_count == 7


def test_only_overdue_messages_are_sent_again_and_a_late_confirmation_saves_a_resend() -> None:
    outbox = Outbox(confirmed=True)
    for n in (1, 2):
        outbox.put(stamped(n))
    send_all(outbox, 10.0)
    outbox.put(stamped(3))
    send_all(outbox, 20.0)
    assert outbox.oldest_awaiting() == 10.0
    assert outbox.resend_awaiting(older_than=15.0) == 2  # 1 and 2; 3 is not overdue
    assert outbox.oldest_awaiting() == 20.0
    outbox.confirm([(1, 1)], now=21.0)  # the confirmation was only late: 1 need not go again
    assert send_all(outbox, 22.0) == [2]


def test_resends_back_off_while_the_platform_is_silent_and_not_once_it_answers() -> None:
    outbox = Outbox(confirmed=True, resend_after_s=2.0, max_resend_after_s=5.0)
    outbox.put(stamped(1))
    send_all(outbox, 0.0)
    assert outbox.overdue_in(1.0) == 1.0
    assert outbox.resend_overdue(1.9) == 0
    assert outbox.resend_overdue(2.0) == 1  # the timeout is now 4 s
    send_all(outbox, 2.0)
    assert outbox.resend_overdue(5.9) == 0
    assert outbox.resend_overdue(6.0) == 1  # then 5 s, the maximum
    send_all(outbox, 6.0)
    assert outbox.resend_overdue(10.9) == 0
    assert outbox.resend_overdue(11.0) == 1
    outbox.put(stamped(2))
    send_all(outbox, 11.0)
    assert outbox.confirm([(2, 2)], now=11.5) == 1  # an answer: back to 2 s
    assert outbox.resend_overdue(13.0) == 1
    assert outbox.overdue_in(13.0) is None


def test_a_confirmation_that_overtakes_its_resend_ends_it() -> None:
    outbox = Outbox(confirmed=True)
    outbox.put(stamped(1))
    send_all(outbox, 1.0)
    outbox.resend_awaiting()
    resend = outbox.peek()
    assert resend is not None
    outbox.confirm([(1, 1)], now=2.0)  # the first send's confirmation, late
    outbox.acknowledged(resend, 3.0)  # then the resend's PUBACK
    assert len(outbox) == 0
    assert outbox.oldest_awaiting() is None


def test_a_full_outbox_drops_the_oldest_even_when_it_awaits_confirmation() -> None:
    outbox = Outbox(capacity=3, confirmed=True)
    for n in (1, 2, 3):
        outbox.put(stamped(n))
    send_all(outbox, 1.0)
    outbox.put(stamped(4))
    assert outbox.dropped == 1
    assert outbox.confirm([(1, 4)], now=2.0) == 2  # 2 and 3; 1 is gone, 4 not sent yet
    assert send_all(outbox, 3.0) == [4]


def test_a_huge_range_from_the_network_costs_no_more_than_what_is_held() -> None:
    outbox = Outbox(confirmed=True)
    outbox.put(stamped(5))
    send_all(outbox, 1.0)
    assert outbox.confirm([(0, 2**62), (9, 3)], now=2.0) == 1


def test_stamps_name_a_message_only_when_complete() -> None:
    topic = f"vehicles/{VIN}/events/crash"
    assert stamp_of(topic, stamp_properties("b1", 42, resends=2)) == Stamp(VIN, "b1", 42)
    assert stamp_properties("b1", 42) == [("fl-boot", "b1"), ("fl-seq", "42")]
    assert stamp_of(topic, [("fl-seq", "42")]) is None
    assert stamp_of(topic, [("fl-boot", "b1"), ("fl-seq", "-1")]) is None
    assert stamp_of(topic, [("fl-boot", "b1"), ("fl-seq", "٣")]) is None  # a digit, not ASCII
    assert stamp_of("vehicles/NOTAVIN/telemetry", stamp_properties("b1", 1)) is None
    assert stamp_of("fleet/x", stamp_properties("b1", 1)) is None


@given(
    topic=st.text(max_size=40) | st.just(f"vehicles/{VIN}/telemetry"),
    properties=st.lists(
        st.tuples(st.sampled_from(["fl-boot", "fl-seq", "x"]) | st.text(max_size=5), st.text()),
        max_size=4,
    ),
)
@PROPERTY
def test_any_user_properties_give_a_stamp_or_none(
    topic: str, properties: list[tuple[str, str]]
) -> None:
    stamp = stamp_of(topic, properties)
    assert stamp is None or (stamp.vin == VIN and stamp.seq >= 0)


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=60))
@PROPERTY
def test_ranges_cover_exactly_the_numbers(seqs: list[int]) -> None:
    ranges = to_ranges(seqs)
    covered = [seq for first, last in ranges for seq in range(first, last + 1)]
    assert covered == sorted(set(seqs))
    assert all(b[0] > a[1] + 1 for a, b in itertools.pairwise(ranges))


def test_a_worker_confirms_per_car_and_boot_in_bounded_messages() -> None:
    confirmations = Confirmations()
    other = "WVWZZZ1JZXW000002"
    for seq in (1, 2, 3, 7):
        confirmations.add(Stamp(VIN, "a", seq), received=5.0)
    confirmations.add(Stamp(VIN, "b", 1), received=6.0)
    confirmations.add(Stamp(other, "c", 9), received=7.0)
    for seq in range(1, 2 * MAX_RANGES_PER_MESSAGE + 2, 2):  # no two in a row: one range each
        confirmations.add(Stamp(other, "d", seq), received=8.0)
    assert confirmations.pending() == 6 + MAX_RANGES_PER_MESSAGE + 1
    sent = confirmations.take(now_ms=1000)
    assert confirmations.take() == []
    decoded = [(c.vin, msgspec.json.decode(c.payload, type=Delivered)) for c in sent]
    assert decoded[:3] == [
        (VIN, Delivered(ts=1000, boot="a", ranges=[(1, 3), (7, 7)])),
        (VIN, Delivered(ts=1000, boot="b", ranges=[(1, 1)])),
        (other, Delivered(ts=1000, boot="c", ranges=[(9, 9)])),
    ]
    big = [delivered for _vin, delivered in decoded[3:]]
    assert [len(d.ranges) for d in big] == [MAX_RANGES_PER_MESSAGE, 1]
    assert sum(c.messages for c in sent) == 6 + MAX_RANGES_PER_MESSAGE + 1
    assert sent[0].oldest_received == 5.0


def test_the_detector_finds_a_lost_tail_and_counts_duplicates() -> None:
    truth = {VIN: {"a": 5, "b": 2}}
    seen = [(VIN, "a", 1), (VIN, "a", 2), (VIN, "a", 2), (VIN, "b", 1), (VIN, "b", 2)]
    seen += [(VIN, "a", 9), ("WVWZZZ1JZXW000002", "z", 1)]
    gaps = compare(truth, seen)
    assert (gaps.expected, gaps.found, gaps.missing) == (7, 4, 3)
    assert gaps.missing_ranges == {VIN: [("a", 3, 5)]}  # min..max of what arrived would say 0
    assert (gaps.duplicates, gaps.unexpected, gaps.cars_missing) == (1, 2, 1)
    assert compare(truth, [*seen, (VIN, "a", 3), (VIN, "a", 4), (VIN, "a", 5)]).missing == 0


@given(payload=RAW_VALUES)
@PROPERTY
def test_the_car_takes_any_confirmation_or_counts_it_bad(payload: bytes | None) -> None:
    agent = VehicleAgent(
        VehicleState(vin=VIN, latitude=52.5, longitude=13.4), host="x", port=1, verifier=None
    )
    agent.sample_telemetry()
    head = agent.outbox.peek()
    assert head is not None
    agent.outbox.acknowledged(head, 0.0)
    agent._confirmed(payload or b"")  # never raises
    if agent.stats.bad_confirmations == 0:  # then it was a confirmation of the contract
        msgspec.json.decode(payload or b"", type=Delivered)
    assert len(agent.outbox) == 1  # of another boot, or garbage: nothing confirmed


def test_the_car_drops_only_what_its_own_boot_had_confirmed() -> None:
    agent = VehicleAgent(
        VehicleState(vin=VIN, latitude=52.5, longitude=13.4), host="x", port=1, verifier=None
    )
    agent.sample_telemetry()
    head = agent.outbox.peek()
    assert head is not None
    assert head.seq == agent.last_seq == 1
    agent.outbox.acknowledged(head, 0.0)
    agent._confirmed(encode(Delivered(ts=1, boot="another-boot", ranges=[(1, 1)])))
    assert len(agent.outbox) == 1
    agent._confirmed(b"{not json")
    assert agent.stats.bad_confirmations == 1
    agent._confirmed(encode(Delivered(ts=1, boot=agent.boot, ranges=[(1, 1)])))
    assert len(agent.outbox) == 0
