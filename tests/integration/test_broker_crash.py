"""A crashed MQTT broker loses no message: cars keep each one until the platform confirms it.

Real Mosquitto, real Kafka, a real gateway worker and simulated cars. The broker is killed with
SIGKILL mid-stream and started again (once with its persistence database, once without). The
gateway reconnects later than the cars, as in the bug report (its reconnect delay is longer), so
cars publish into a broker that has no subscriber yet and acknowledges what it then drops. The
detector is the simulator's own record: every car's messages 1..last per boot, looked up in
Kafka (records and dead letters). Cars that do not wait for the confirmation run through the
same crash beside them: they lose messages, which shows the check can fail.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.settings import Settings
from fleetlink.sim.fleet import FleetSimulation, FleetSummary
from fleetlink.sim.truth import Gaps, compare, stamps_in
from fleetlink.stack import LocalStack
from tests.support.gateway import GatewayTopics, gateway_config, supervised_gateway
from tests.support.stack import fleet_tls, vehicle_verifier

CARS = 40
INTERVAL_S = 0.2
RUN_S = 10.0
CRASH_AT_S = 2.5
DOWN_S = 2.0
# the worker's first reconnect comes after the broker is back, and after most cars
GATEWAY_RECONNECT_S = 5


def fleet(stack_config: Settings, prefix: str, *, confirm: bool, seed: int) -> FleetSimulation:
    return FleetSimulation(
        host="127.0.0.1",
        port=stack_config.stack.mqtt_port,
        tls_for=fleet_tls(stack_config),
        verifier=vehicle_verifier(stack_config),
        vehicles=CARS,
        interval_s=INTERVAL_S,
        seed=seed,
        vin_prefix=prefix,
        mode="kinematic",
        confirm=confirm,
        confirm_timeout_s=2.0,
        reconnect_max_s=2.0,  # back within the run, whatever the backoff drew
    )


def gaps_in_kafka(settings: Settings, topics: GatewayTopics, simulation: FleetSimulation) -> Gaps:
    bootstrap = settings.kafka_bootstrap_servers()
    seen = [
        stamp
        for topic in (topics.telemetry, topics.events, topics.responses, topics.dlq)
        for stamp in stamps_in(read_topic(KafkaClients.at(bootstrap), topic))
    ]
    truth = simulation.truth()
    return compare(truth, [stamp for stamp in seen if stamp[0] in truth])


@pytest.mark.parametrize("wipe", [False, True], ids=["restarted", "wiped"])
def test_kill_9_of_the_broker_mid_stream_loses_nothing_the_cars_kept(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings, wipe: bool
) -> None:
    config, settings, topics = gateway_config(
        tmp_path, stack_config, mqtt={"reconnect_min_s": GATEWAY_RECONNECT_S}
    )
    tag = "W" if wipe else "R"
    keeping = fleet(stack_config, f"CK{tag}", confirm=True, seed=21)
    forgetting = fleet(stack_config, f"CF{tag}", confirm=False, seed=22)

    async def crash() -> None:
        await asyncio.sleep(CRASH_AT_S)
        local_stack.kill("mosquitto")
        await asyncio.sleep(DOWN_S)
        if wipe:
            local_stack.wipe_broker_state()
        await asyncio.to_thread(local_stack.start_component, "mosquitto")

    async def scenario() -> tuple[FleetSummary, FleetSummary]:
        try:
            kept, forgot, _ = await asyncio.gather(
                keeping.run(RUN_S), forgetting.run(RUN_S), crash()
            )
        finally:  # whatever failed, the session's broker runs again for the next tests
            await asyncio.to_thread(local_stack.start_component, "mosquitto")
        return kept, forgot

    with supervised_gateway(config, workers=1):
        kept, forgot = asyncio.run(scenario())
        kept_gaps = gaps_in_kafka(settings, topics, keeping)
        forgot_gaps = gaps_in_kafka(settings, topics, forgetting)

    print(f"confirming cars: {kept}\n  {kept_gaps}")
    print(f"cars without confirmation: {forgot}\n  {forgot_gaps}")
    assert kept.disconnects >= CARS, "every car lost its link in the crash"
    assert kept.connects >= 2 * CARS, "and every car came back"
    assert kept_gaps.expected > CARS * RUN_S / INTERVAL_S * 0.8
    assert kept.held_at_exit == 0
    assert kept.outbox_dropped == 0
    assert kept_gaps.missing == 0, kept_gaps.missing_ranges
    assert kept.sent_again > 0, "the confirmation, not luck, kept the messages"
    if wipe:  # no session survived: what the cars sent before the gateway was back is gone
        assert forgot_gaps.missing > 0
        assert forgot.held_at_exit == 0  # lost on the broker's side, not left in the car
