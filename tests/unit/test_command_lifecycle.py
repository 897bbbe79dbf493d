import pytest

from fleetlink.commands.book import RESPONSE_GRACE_MS, CommandBook
from fleetlink.commands.lifecycle import TERMINAL, InvalidTransitionError, can_move
from fleetlink.contracts.models import CommandName, CommandResponse, CommandState, ResponseStatus

VIN = "WVWZZZ1JZXW000001"
NOW = 1_764_000_000_000
TTL = 60_000


def answer(status: ResponseStatus, reason: str | None = None) -> CommandResponse:
    return CommandResponse(ts=NOW, status=status, reason=reason)


def submit(book: CommandBook, command_id: str, name: CommandName = CommandName.TRUNK_OPEN,
           key: str | None = None, now: int = NOW) -> list[CommandState]:  # fmt: skip
    _record, steps = book.submit(
        command_id=command_id, vin=VIN, name=name, params={}, ttl_ms=TTL, now=now,
        idempotency_key=key,
    )  # fmt: skip
    return [step.state for step in steps]


def states(book: CommandBook, command_id: str) -> list[CommandState]:
    return [step.state for step in book.records[command_id].history]


def test_states_only_move_forward_and_terminal_is_final() -> None:
    assert can_move(CommandState.QUEUED, CommandState.SENT)
    assert can_move(CommandState.SENT, CommandState.DELIVERED)
    assert not can_move(CommandState.DELIVERED, CommandState.SENT)
    assert not can_move(CommandState.DELIVERED, CommandState.CANCELLED)  # it may have acted
    for terminal in TERMINAL:
        assert not any(can_move(terminal, target) for target in CommandState)


def test_success_path() -> None:
    book = CommandBook()
    submit(book, "c1")
    book.presence(VIN, True, NOW)
    book.sent("c1", NOW + 5)
    book.answered("c1", answer(ResponseStatus.ACCEPTED), NOW + 30)
    book.answered("c1", answer(ResponseStatus.SUCCEEDED), NOW + 60)
    assert states(book, "c1") == ["queued", "sent", "delivered", "succeeded"]
    assert book.expire(NOW + TTL + RESPONSE_GRACE_MS) == []  # finished commands stay finished


def test_outcome_without_accepted_still_passes_delivered_and_failure_keeps_reason() -> None:
    book = CommandBook()
    submit(book, "c1")
    book.sent("c1", NOW)
    book.answered("c1", answer(ResponseStatus.FAILED, "vehicle-moving"), NOW + 40)
    assert states(book, "c1") == ["queued", "sent", "delivered", "failed"]
    assert book.records["c1"].reason == "vehicle-moving"


def test_vehicle_rejecting_an_expired_command_makes_it_expired() -> None:
    book = CommandBook()
    submit(book, "c1")
    book.sent("c1", NOW)
    book.answered("c1", answer(ResponseStatus.REJECTED, "expired"), NOW + TTL + 1)
    assert book.records["c1"].state is CommandState.EXPIRED


def test_offline_vehicle_past_ttl_is_expired_and_a_late_answer_changes_nothing() -> None:
    book = CommandBook()
    book.presence(VIN, False, NOW)
    submit(book, "c1")
    book.sent("c1", NOW)
    steps = book.expire(NOW + TTL + RESPONSE_GRACE_MS)
    assert [(s.state, s.reason) for s in steps] == [("expired", "vehicle-offline")]
    assert book.answered("c1", answer(ResponseStatus.SUCCEEDED), NOW + 2 * TTL) == []
    assert book.records["c1"].state is CommandState.EXPIRED


def test_lost_response_from_a_reachable_vehicle_is_unknown_never_retried() -> None:
    book = CommandBook()
    submit(book, "c1")
    book.sent("c1", NOW)
    book.presence(VIN, True, NOW + 1000)  # it came online while the command was out
    (step,) = book.expire(NOW + TTL + RESPONSE_GRACE_MS)
    assert (step.state, step.reason) == ("unknown", "no-response")
    book2 = CommandBook()
    submit(book2, "c2")
    book2.sent("c2", NOW)
    book2.answered("c2", answer(ResponseStatus.ACCEPTED), NOW + 10)
    (step2,) = book2.expire(NOW + TTL + RESPONSE_GRACE_MS)
    assert (step2.state, step2.reason) == ("unknown", "no-outcome")


def test_never_sent_command_expires_at_ttl_plus_grace_not_before() -> None:
    book = CommandBook()
    submit(book, "c1")
    assert book.expire(NOW + TTL + RESPONSE_GRACE_MS - 1) == []
    (step,) = book.expire(NOW + TTL + RESPONSE_GRACE_MS)
    assert (step.state, step.reason) == ("expired", "ttl")


def test_cancel_only_before_delivery() -> None:
    book = CommandBook()
    submit(book, "c1")
    assert book.cancel("c1", NOW + 1).state is CommandState.CANCELLED
    submit(book, "c2")
    book.sent("c2", NOW)
    book.answered("c2", answer(ResponseStatus.ACCEPTED), NOW + 10)
    with pytest.raises(InvalidTransitionError):
        book.cancel("c2", NOW + 20)
    assert book.records["c2"].state is CommandState.DELIVERED


def test_same_idempotency_key_gives_the_same_command() -> None:
    book = CommandBook()
    assert submit(book, "c1", key="k-1") == ["queued"]
    assert submit(book, "c2", key="k-1") == []  # nothing new happens
    assert list(book.records) == ["c1"]
    assert submit(book, "c3", key="k-2") == ["queued"]


def test_a_command_read_twice_is_one_command() -> None:
    book = CommandBook()
    submit(book, "c1")
    book.sent("c1", NOW)
    assert submit(book, "c1") == []  # a redelivered record does not reset it
    assert book.records["c1"].state is CommandState.SENT


def test_settings_are_latest_wins_for_queued_ones_only() -> None:
    book = CommandBook()
    submit(book, "a", CommandName.CLIMATE)
    submit(book, "b", CommandName.CLIMATE)
    assert book.records["a"].state is CommandState.CANCELLED
    assert book.records["a"].reason == "superseded"
    book.sent("b", NOW)
    submit(book, "c", CommandName.CLIMATE)
    assert book.records["b"].state is CommandState.SENT  # already on its way: left alone
    submit(book, "d", CommandName.TRUNK_OPEN)
    submit(book, "e", CommandName.TRUNK_OPEN)
    assert book.records["d"].state is CommandState.QUEUED  # actuations never supersede
