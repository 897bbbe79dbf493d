import pytest

from fleetlink.commands.book import RESPONSE_GRACE_MS, CommandBook
from fleetlink.commands.lifecycle import TERMINAL, CommandRecord, InvalidTransitionError, can_move
from fleetlink.contracts import vss
from fleetlink.contracts.models import (
    CommandName,
    CommandResponse,
    CommandState,
    ResponseStatus,
    Transition,
)

VIN = "WVWZZZ1JZXW000001"
NOW = 1_764_000_000_000
TTL = 60_000
AFTER_TTL = NOW + TTL + RESPONSE_GRACE_MS


def answer(status: ResponseStatus, reason: str | None = None) -> CommandResponse:
    return CommandResponse(ts=NOW, status=status, reason=reason)


def submit(book: CommandBook, command_id: str, name: CommandName = CommandName.TRUNK_OPEN,
           now: int = NOW) -> list[CommandState]:  # fmt: skip
    steps = book.submit(
        command_id=command_id, vin=VIN, name=name, params={}, created_at=now,
        expires_at=now + TTL,
    )  # fmt: skip
    return [step.state for step in steps]


def report(command_id: str, state: CommandState, ts: int = NOW, reason: str | None = None
           ) -> Transition:  # fmt: skip
    return Transition(command_id, VIN, "trunk.open", state, ts, reason)


def sent(book: CommandBook, command_id: str, ts: int = NOW) -> list[Transition]:
    return book.dispatched(report(command_id, CommandState.SENT, ts), ts)


def states(book: CommandBook, command_id: str) -> list[CommandState]:
    return [step.state for step in book.records[command_id].history]


def test_states_only_move_forward_and_terminal_is_final() -> None:
    assert can_move(CommandState.QUEUED, CommandState.SENT)
    assert can_move(CommandState.SENT, CommandState.DELIVERED)
    assert not can_move(CommandState.DELIVERED, CommandState.SENT)
    assert not can_move(CommandState.DELIVERED, CommandState.CANCELLED)  # it may have acted
    assert not can_move(CommandState.SENT, CommandState.CANCELLED)  # the broker has it
    assert can_move(CommandState.QUEUED, CommandState.CANCELLED)
    for terminal in TERMINAL - {CommandState.UNKNOWN}:
        assert not any(can_move(terminal, target) for target in CommandState)
    # unknown is never retried, but evidence may resolve it
    resolvable = {t for t in CommandState if can_move(CommandState.UNKNOWN, t)}
    assert resolvable == {CommandState.SUCCEEDED, CommandState.FAILED}


def test_success_path_and_every_step_carries_the_whole_command() -> None:
    book = CommandBook()
    submit(book, "c1")
    book.presence(VIN, True, NOW)
    sent(book, "c1", NOW + 5)
    book.answered("c1", answer(ResponseStatus.ACCEPTED), NOW + 30)
    (last,) = book.answered("c1", answer(ResponseStatus.SUCCEEDED), NOW + 60)
    assert states(book, "c1") == ["queued", "sent", "delivered", "succeeded"]
    assert (last.expires_at, last.created_at, last.params) == (NOW + TTL, NOW, {})
    assert book.expire(AFTER_TTL) == []  # finished commands stay finished


def test_restore_from_the_last_status_record_continues_the_lifecycle() -> None:
    book = CommandBook()
    submit(book, "c1")
    (sent_step,) = sent(book, "c1", NOW + 5)
    again = CommandBook()
    again.restore(sent_step)
    assert again.records["c1"].state is CommandState.SENT
    assert submit(again, "c1") == []  # the command record read again changes nothing
    steps = again.answered("c1", answer(ResponseStatus.SUCCEEDED), NOW + 50)
    assert [s.state for s in steps] == ["delivered", "succeeded"]
    assert CommandRecord.restore(steps[-1]).finished


def test_outcome_without_accepted_still_passes_delivered_and_failure_keeps_reason() -> None:
    book = CommandBook()
    submit(book, "c1")
    sent(book, "c1")
    book.answered("c1", answer(ResponseStatus.FAILED, "vehicle-moving"), NOW + 40)
    assert states(book, "c1") == ["queued", "sent", "delivered", "failed"]
    assert book.records["c1"].reason == "vehicle-moving"


def test_an_answer_overtaking_the_sent_report_still_gives_the_whole_lifecycle() -> None:
    book = CommandBook()
    submit(book, "c1")
    book.answered("c1", answer(ResponseStatus.SUCCEEDED), NOW + 10)
    assert sent(book, "c1", NOW + 5) == []
    assert states(book, "c1") == ["queued", "sent", "delivered", "succeeded"]


def test_reports_and_answers_read_before_their_command_are_applied_when_it_comes() -> None:
    book = CommandBook()
    assert sent(book, "c1", NOW + 5) == []
    assert book.answered("c1", answer(ResponseStatus.SUCCEEDED), NOW + 10) == []
    assert submit(book, "c1") == ["queued", "sent", "delivered", "succeeded"]
    book.answered("stranger", answer(ResponseStatus.SUCCEEDED), NOW)
    book.forget(NOW + 10_000, keep_ms=5000)
    assert submit(book, "stranger") == ["queued"]  # forgotten, not applied hours later


def test_vehicle_rejecting_an_expired_command_makes_it_expired() -> None:
    book = CommandBook()
    submit(book, "c1")
    sent(book, "c1")
    book.answered("c1", answer(ResponseStatus.REJECTED, "expired"), NOW + TTL + 1)
    assert book.records["c1"].state is CommandState.EXPIRED


def test_downlink_reports_cancel_and_expiry_of_held_commands() -> None:
    book = CommandBook()
    submit(book, "c1")
    submit(book, "c2")
    (step,) = book.dispatched(report("c1", CommandState.CANCELLED, NOW, "superseded"), NOW)
    assert (step.state, step.reason) == ("cancelled", "superseded")
    book.dispatched(report("c2", CommandState.EXPIRED, NOW + TTL, "ttl"), NOW + TTL)
    assert book.records["c2"].state is CommandState.EXPIRED
    assert sent(book, "c1") == []  # a late or stale report changes nothing


def test_offline_vehicle_past_ttl_is_expired_and_a_late_answer_changes_nothing() -> None:
    book = CommandBook()
    book.presence(VIN, False, NOW)
    submit(book, "c1")
    sent(book, "c1")
    steps = book.expire(AFTER_TTL)
    assert [(s.state, s.reason) for s in steps] == [("expired", "vehicle-offline")]
    assert book.answered("c1", answer(ResponseStatus.SUCCEEDED), NOW + 2 * TTL) == []
    assert book.records["c1"].state is CommandState.EXPIRED


def test_lost_response_from_a_reachable_vehicle_is_unknown_never_retried() -> None:
    book = CommandBook()
    submit(book, "c1")
    sent(book, "c1")
    book.presence(VIN, True, NOW + 1000)  # it came online while the command was out
    (step,) = book.expire(AFTER_TTL)
    assert (step.state, step.reason) == ("unknown", "no-response")
    book2 = CommandBook()
    submit(book2, "c2")
    sent(book2, "c2")
    book2.answered("c2", answer(ResponseStatus.ACCEPTED), NOW + 10)
    (step2,) = book2.expire(AFTER_TTL)
    assert (step2.state, step2.reason) == ("unknown", "no-outcome")


def test_unknown_is_reconciled_from_telemetry_showing_the_effect() -> None:
    book = CommandBook()
    book.presence(VIN, True, NOW)
    submit(book, "c1")
    assert book.watching(VIN)
    sent(book, "c1", NOW + 5)
    # telemetry from before the command proves nothing
    assert book.telemetry(VIN, {vss.TRUNK_REAR_IS_OPEN: True}, NOW) == []
    book.telemetry(VIN, {vss.TRUNK_REAR_IS_OPEN: True}, NOW + 100)  # it opened; answer lost
    steps = book.expire(AFTER_TTL)
    assert [s.state for s in steps] == ["unknown", "succeeded"]
    assert steps[-1].reason is not None
    assert steps[-1].reason.startswith("reconciled")
    assert not book.watching(VIN)


def test_unknown_resolved_as_failed_when_telemetry_after_the_ttl_shows_no_effect() -> None:
    book = CommandBook()
    book.presence(VIN, True, NOW)
    submit(book, "c1")
    sent(book, "c1", NOW + 5)
    assert [s.state for s in book.expire(AFTER_TTL)] == ["unknown"]
    # during the TTL the trunk was closed: not proof, the command may still have run
    assert book.telemetry(VIN, {vss.TRUNK_REAR_IS_OPEN: False}, NOW + 10) == []
    (step,) = book.telemetry(VIN, {vss.TRUNK_REAR_IS_OPEN: False}, NOW + TTL + 1)
    assert step.state is CommandState.FAILED


def test_a_late_answer_resolves_unknown() -> None:
    book = CommandBook()
    submit(book, "c1", CommandName.HONK)
    sent(book, "c1")
    book.presence(VIN, True, NOW + 1)
    book.expire(AFTER_TTL)
    (step,) = book.answered("c1", answer(ResponseStatus.SUCCEEDED), AFTER_TTL + 5)
    assert (step.state, step.reason) == ("succeeded", "late-answer")


def test_never_sent_command_expires_at_ttl_plus_grace_not_before() -> None:
    book = CommandBook()
    submit(book, "c1")
    assert book.expire(AFTER_TTL - 1) == []
    (step,) = book.expire(AFTER_TTL)
    assert (step.state, step.reason) == ("expired", "ttl")


def test_a_command_read_twice_is_one_command() -> None:
    book = CommandBook()
    submit(book, "c1")
    sent(book, "c1")
    assert submit(book, "c1") == []  # a redelivered record does not reset it
    assert book.records["c1"].state is CommandState.SENT


def test_finished_commands_are_forgotten_after_a_while() -> None:
    book = CommandBook()
    submit(book, "c1", CommandName.HONK)
    submit(book, "c2", CommandName.HONK)
    book.dispatched(report("c1", CommandState.CANCELLED, NOW, "cancelled-by-client"), NOW)
    assert book.forget(NOW + 1000, keep_ms=5000) == 0
    assert book.forget(NOW + 10_000, keep_ms=5000) == 1
    assert list(book.records) == ["c2"]


def test_an_invalid_transition_raises_and_leaves_the_record() -> None:
    record, _ = CommandRecord.new(
        command_id="c1", vin=VIN, name="honk", params={}, created_at=NOW, expires_at=NOW + TTL
    )
    record.move(CommandState.SENT, NOW)
    with pytest.raises(InvalidTransitionError):
        record.move(CommandState.CANCELLED, NOW + 1)
    assert record.state is CommandState.SENT
