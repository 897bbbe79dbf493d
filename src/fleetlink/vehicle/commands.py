"""Command handling in the vehicle: signature, expiry, digital keys, at-most-once execution.

The car trusts no sender: a command runs only when the platform's signature holds, it names this
car, it has not expired, and (when it comes with a digital key) the key allows it now, here, one
more time. Parameters are checked again against the catalogue. A command id is executed at most
once: a redelivery is answered from memory with the answer it got the first time; a command
older than what the car still remembers is refused as a replay.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fleetlink.contracts.catalogue import InvalidParamsError, validate_params
from fleetlink.contracts.codec import UndecodableError, decode_with, decoder_of
from fleetlink.contracts.models import Command, CommandName, CommandResponse, ResponseStatus
from fleetlink.contracts.purchases import firmware_key
from fleetlink.security.grants import MAX_CLOCK_SKEW_MS, grant_refusal
from fleetlink.security.signing import SignatureError, Verifier
from fleetlink.vehicle.state import VehicleState

_command_decoder = decoder_of(Command)


def read_command(payload: bytes) -> Command:
    """The command in an MQTT payload, or ``UndecodableError`` with the reason."""
    command: Command = decode_with(_command_decoder, payload)
    return command


def malformed_answer(command_id: str, error: UndecodableError, now_ms: int) -> CommandResponse:
    """The answer to a payload that is no command (the id is the topic's last level)."""
    reason = f"malformed: {error.reason.value}: {error.detail[:180]}"
    return CommandResponse(
        ts=now_ms, status=ResponseStatus.REJECTED, reason=reason, command_id=command_id
    )


Action = Callable[[VehicleState, dict[str, Any]], str | None]  # None: done; str: failure reason


def _lock(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.doors_locked = True
    state.trunk_locked = True
    return None


def _unlock(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.doors_locked = False
    return None


def _trunk_open(state: VehicleState, params: dict[str, Any]) -> str | None:
    if state.speed_kmh > 0.5:
        return "vehicle-moving"
    state.trunk_open = True
    state.trunk_locked = False
    return None


def relock(state: VehicleState) -> bool:
    """A trunk left open after a delivery closes and locks by itself; True when it did."""
    if not state.trunk_open:
        return False
    state.trunk_open = False
    state.trunk_locked = True
    return True


def _trunk_close(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.trunk_open = False
    state.trunk_locked = True
    return None


def _signal(state: VehicleState, params: dict[str, Any]) -> str | None:
    return None  # flash / honk: nothing to remember


def _climate(state: VehicleState, params: dict[str, Any]) -> str | None:
    target = params.get("target_c")
    if target is not None:
        state.climate_target_c = float(target)
    state.climate_on = bool(params.get("on", True))
    return None


def _charging(on: bool) -> Action:
    def action(state: VehicleState, params: dict[str, Any]) -> str | None:
        if on and state.battery_soc >= 100:
            return "battery-full"
        state.charging = on
        return None

    return action


def _feature_fits(state: VehicleState, params: dict[str, Any]) -> str | None:
    """Why this car refuses a feature (it knows its own hardware and firmware best)."""
    feature = str(params["feature"])
    if state.equipment is not None and feature not in state.equipment:
        return f"not-equipped: this car lacks the hardware {feature} needs"
    needed = params.get("min_firmware")
    if needed is not None and firmware_key(state.firmware) < firmware_key(str(needed)):
        return f"firmware-too-old: {feature} needs {needed}, the car runs {state.firmware}"
    return None


def _feature(state: VehicleState, params: dict[str, Any]) -> str | None:
    feature = str(params["feature"])
    state.features.add(feature)
    until = params.get("until")
    if until is None:
        state.feature_until.pop(feature, None)
    else:
        state.feature_until[feature] = int(until)
    return None


def _feature_off(state: VehicleState, params: dict[str, Any]) -> str | None:
    feature = str(params["feature"])
    state.features.discard(feature)
    state.feature_until.pop(feature, None)
    return None


def _config(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.config.update(params)
    return None


def _revoke(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.revoked_grants.add(str(params["grant_id"]))
    return None


ACTIONS: dict[CommandName, Action] = {
    CommandName.LOCK: _lock,
    CommandName.UNLOCK: _unlock,
    CommandName.TRUNK_OPEN: _trunk_open,
    CommandName.TRUNK_CLOSE: _trunk_close,
    CommandName.FLASH: _signal,
    CommandName.HONK: _signal,
    CommandName.CLIMATE: _climate,
    CommandName.CHARGING_START: _charging(True),
    CommandName.CHARGING_STOP: _charging(False),
    CommandName.FEATURE_ACTIVATE: _feature,
    CommandName.FEATURE_DEACTIVATE: _feature_off,
    CommandName.CONFIG_CHANGE: _config,
    CommandName.GRANT_REVOKE: _revoke,
}


_FEATURE_COMMANDS = frozenset({CommandName.FEATURE_ACTIVATE, CommandName.FEATURE_DEACTIVATE})


def feature_report(
    state: VehicleState, command: Command, answer: CommandResponse, now_ms: int
) -> dict[str, object] | None:
    """The ``feature-state`` event a feature command that ran calls for, or None."""
    if command.name not in _FEATURE_COMMANDS or answer.status is not ResponseStatus.SUCCEEDED:
        return None
    feature = str(command.params["feature"])
    data: dict[str, object] = {
        "feature": feature,
        "active": state.feature_active(feature, now_ms),
        "command_id": command.command_id,
    }
    until = state.feature_until.get(feature)
    if until is not None:
        data["until"] = until
    return data


def opened_with_key(state: VehicleState, command: Command) -> bool:
    """A trunk opened with a digital key (a courier's delivery): it relocks by itself."""
    return command.name is CommandName.TRUNK_OPEN and command.grant is not None and state.trunk_open


@dataclass(frozen=True)
class Reaction:
    """What a car does about one message on its commands topic."""

    answers: list[CommandResponse]  # to publish, in order
    malformed: bool  # no command at all: the one answer says why
    relock: bool  # a trunk opened with a digital key: it closes and locks by itself later
    feature_change: dict[str, object] | None  # the ``feature-state`` event, after the answers
    ran: bool  # the car's state changed: it reports telemetry at once


def react(executor: CommandExecutor, command_id: str, payload: bytes, now_ms: int) -> Reaction:
    """The car's reaction to ``payload`` received as command ``command_id`` (the topic's last
    level): the in-vehicle agent and the load fleet both answer through this."""
    executed_before = executor.executed
    try:
        command = read_command(payload)
    except UndecodableError as error:
        answer = malformed_answer(command_id, error, now_ms)
        return Reaction([answer], malformed=True, relock=False, feature_change=None, ran=False)
    answers = executor.handle(command, now_ms)
    ran = executor.executed > executed_before
    state = executor.state
    return Reaction(
        answers,
        malformed=False,
        relock=opened_with_key(state, command),
        feature_change=feature_report(state, command, answers[-1], now_ms) if ran else None,
        ran=ran,
    )


# checked before a command is accepted: a refusal is ``rejected``, nothing was tried
PRECONDITIONS: dict[CommandName, Action] = {CommandName.FEATURE_ACTIVATE: _feature_fits}


class CommandExtension(Protocol):
    """Commands a car runs with more than its state (OTA updates: a download, a job)."""

    @property
    def actions(self) -> Mapping[CommandName, Action]: ...

    @property
    def preconditions(self) -> Mapping[CommandName, Action]: ...


class CommandExecutor:
    """Executes commands on a vehicle state, each id at most once.

    ``verifier`` holds the platform keys the car trusts; ``None`` turns every check of origin
    off and exists only for tests of the execution rules themselves. ``extension`` adds
    commands (or replaces some); a command nothing runs is rejected as unsupported.
    """

    def __init__(
        self,
        state: VehicleState,
        *,
        verifier: Verifier | None,
        memory: int = 10_000,
        skew_ms: int = MAX_CLOCK_SKEW_MS,
        extension: CommandExtension | None = None,
    ) -> None:
        self.state = state
        self._actions: dict[CommandName, Action] = dict(ACTIONS)
        self._preconditions: dict[CommandName, Action] = dict(PRECONDITIONS)
        if extension is not None:
            self._actions.update(extension.actions)
            self._preconditions.update(extension.preconditions)
        self._verifier = verifier
        self._answers: OrderedDict[str, tuple[int, CommandResponse]] = OrderedDict()
        self._memory = memory
        self._skew_ms = skew_ms
        self._forgotten_counter = -1  # the highest counter of an answer no longer remembered
        self.executed = 0
        self.replays = 0
        self.refused: dict[str, int] = {}  # reason -> count (signature, key, replay ...)
        self.key_uses: list[tuple[str, str, int]] = []  # (grant id, command id, at): the audit

    def handle(self, command: Command, now_ms: int) -> list[CommandResponse]:
        """The answers to publish, in order: ``accepted`` then the outcome, or one rejection."""
        known = self._answers.get(command.command_id)
        if known is not None and known[0] == (command.counter or 0):
            self.replays += 1
            return [known[1]]
        refusal = self._refusal(command, now_ms)
        if refusal is not None:
            self.refused[refusal] = self.refused.get(refusal, 0) + 1
            if known is not None:  # a forged copy of a known id never replaces the real answer
                return [self._answer(command, now_ms, ResponseStatus.REJECTED, refusal)]
            return [self._remember(command, now_ms, ResponseStatus.REJECTED, refusal)]
        action = self._actions.get(command.name)
        if action is None:
            reason = f"unsupported: this car does not run {command.name}"
            return [self._remember(command, now_ms, ResponseStatus.REJECTED, reason)]
        accepted = CommandResponse(
            ts=now_ms, status=ResponseStatus.ACCEPTED, command_id=command.command_id
        )
        try:
            params = validate_params(command.name, dict(command.params))
        except InvalidParamsError as error:
            return [
                self._remember(command, now_ms, ResponseStatus.REJECTED, f"bad-params: {error}")
            ]
        precondition = self._preconditions.get(command.name)
        refused = precondition(self.state, params) if precondition is not None else None
        if refused is not None:
            kind = refused.split(":")[0]
            self.refused[kind] = self.refused.get(kind, 0) + 1
            return [self._remember(command, now_ms, ResponseStatus.REJECTED, refused)]
        failure = action(self.state, params)
        self.executed += 1
        if command.grant is not None and self._verifier is not None:
            grant_id = self._verifier.read_grant(command.grant).grant_id
            self.state.grant_uses[grant_id] = self.state.grant_uses.get(grant_id, 0) + 1
            self.key_uses.append((grant_id, command.command_id, now_ms))
        if failure is not None:
            return [accepted, self._remember(command, now_ms, ResponseStatus.FAILED, failure)]
        return [accepted, self._remember(command, now_ms, ResponseStatus.SUCCEEDED, None)]

    def _refusal(self, command: Command, now_ms: int) -> str | None:
        """Why the car will not run this command, or None."""
        if self._verifier is not None:
            try:
                self._verifier.check_command(command)
            except SignatureError as error:
                return str(error)
            if command.vin != self.state.vin:
                return "wrong-vehicle"
            if command.command_id in self._answers or (
                command.counter is not None and command.counter <= self._forgotten_counter
            ):
                return "replayed"
        if now_ms >= command.expires_at:
            return "expired"
        if command.grant is not None:
            if self._verifier is None:
                return "key-unverifiable"
            try:
                grant = self._verifier.read_grant(command.grant)
            except SignatureError as error:
                return str(error)
            return grant_refusal(
                grant,
                vin=self.state.vin,
                command=command.name,
                now_ms=now_ms,
                uses=self.state.grant_uses.get(grant.grant_id, 0),
                revoked=grant.grant_id in self.state.revoked_grants,
                position=(self.state.latitude, self.state.longitude),
                skew_ms=self._skew_ms,
            )
        return None

    def _answer(
        self, command: Command, now_ms: int, status: ResponseStatus, reason: str | None
    ) -> CommandResponse:
        return CommandResponse(
            ts=now_ms, status=status, reason=reason, command_id=command.command_id
        )

    def _remember(
        self, command: Command, now_ms: int, status: ResponseStatus, reason: str | None
    ) -> CommandResponse:
        answer = self._answer(command, now_ms, status, reason)
        self._answers[command.command_id] = (command.counter or 0, answer)
        if len(self._answers) > self._memory:
            counter, _ = self._answers.popitem(last=False)[1]
            self._forgotten_counter = max(self._forgotten_counter, counter)
        return answer
