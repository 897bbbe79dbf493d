from fleetlink.commands.read_model import CommandView
from fleetlink.contracts.models import CommandState, Transition

VIN = "WVWZZZ1JZXW000001"


def step(state: CommandState, ts: int) -> Transition:
    return Transition("c1", VIN, "honk", state, ts)


def test_the_apis_own_queued_is_replaced_by_the_trackers_and_reported_once() -> None:
    placeholder = step(CommandState.QUEUED, 1)
    view = CommandView(placeholder, [placeholder], placeholder=True)
    assert view.add(step(CommandState.QUEUED, 2)) is True  # the tracker's: listeners hear it
    assert view.history[0].ts == 2
    assert view.add(step(CommandState.QUEUED, 3)) is False  # a duplicate is dropped
    assert view.add(step(CommandState.SENT, 4)) is True
    assert view.latest.state is CommandState.SENT


def test_a_queued_arriving_late_does_not_move_the_state_back() -> None:
    view = CommandView(step(CommandState.SENT, 5), [step(CommandState.SENT, 5)])
    assert view.add(step(CommandState.QUEUED, 1)) is True
    assert view.latest.state is CommandState.SENT
