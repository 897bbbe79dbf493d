import logging
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from fleetlink.commands.read_model import CommandView, ReadModel
from fleetlink.contracts.models import CommandState, Transition
from fleetlink.settings import load_settings
from tests.support.strategies import PROPERTY

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


STATES = list(CommandState)


@PROPERTY
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(STATES), st.booleans()),
        max_size=30,
    )
)
def test_the_kept_state_counts_are_a_recount_of_every_commands_latest_state(
    steps: list[tuple[str, CommandState, bool]],
) -> None:
    """The counts follow each step as it arrives (the API's own ``queued`` included), in any
    order, repeats and all: the same as counting every command's latest state."""
    model = ReadModel(load_settings(None), logging.getLogger("test.view"))
    for ts, (command_id, state, by_the_api) in enumerate(steps):
        transition = Transition(command_id, VIN, "honk", state, ts)
        if by_the_api and state is CommandState.QUEUED:
            model.submitted(transition)
        else:
            model._record(transition)
        recount = Counter(view.latest.state.value for view in model.commands.values())
        assert model.state_counts() == dict(sorted(recount.items()))
