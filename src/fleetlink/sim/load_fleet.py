"""A load fleet: thousands of cars per process on one asyncio loop, for benchmarks.

Each car is a paho MQTT 5 client (paho's protocol code, with the platform's fast reader) over
mutual TLS with its own certificate: a persistent session, a last will and a retained birth,
QoS 1 telemetry every interval stamped with boot and sequence, and commands checked and
answered by the in-vehicle agent's own code (``vehicle.commands.react``: signature, expiry,
digital keys, at-most-once). What makes it cheap: the cars' sockets are registered with the loop
directly, with no task, future or queue per car, and one timer keeps every car's keepalive
(aiomqtt runs a task per car that wakes every second, and the agent two more).

What it leaves out of the agent (``vehicle/agent.py``): the outbox with delivery confirmation
(paho keeps unacknowledged messages in its session instead), hazard warnings, OTA and movement:
the cars stand where they start. A test in ``tests/integration/test_commands.py`` proves its
cars answer commands as the agent does.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fleetlink.adapters.mqtt.client import FastMqttClient, connect_properties
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import EventKind, PresenceStatus
from fleetlink.contracts.topics import MqttTopic
from fleetlink.security.signing import Verifier
from fleetlink.sim.load_car import LoadCar
from fleetlink.vehicle.commands import CommandExecutor, react, relock
from fleetlink.vehicle.state import VehicleState

_REPORT_SLOT_S = 0.05  # the fleet's telemetry goes out in slots this long, spread evenly


class LoadSummary(msgspec.Struct):
    vehicles: int
    duration_s: float
    connected_at_end: int
    connects: int
    disconnects: int
    connect_errors: int
    telemetry: int
    commands: int
    malformed: int
    answers: int
    events: int


class LoadFleet:
    """``vins`` as cars on the running loop; ``run`` until ``stop``, then each says goodbye."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        vins: Sequence[str],
        tls_for: Callable[[str], ssl.SSLContext | None],
        verifier: Verifier | None,
        interval_s: float,
        seed: int = 1,
        password: str | None = None,
        connect_rate: float = 0.0,
        keepalive_s: int = 60,
        session_expiry_s: int = 3600,
        reconnect_max_s: float = 30.0,
        trunk_relock_s: float = 30.0,
        connectors: int = 4,
    ) -> None:
        rng = random.Random(seed)
        self.interval_s = interval_s
        self.connect_rate = connect_rate
        self._address = (host, port)
        self._keepalive_s, self._session_expiry_s = keepalive_s, session_expiry_s
        self._reconnect_max_s, self._trunk_relock_s = reconnect_max_s, trunk_relock_s
        # paho's connect is blocking (TCP, then the TLS handshake): it runs on these threads
        self._connectors = ThreadPoolExecutor(connectors, thread_name_prefix="load-connect")
        self.stats: dict[str, int] = dict.fromkeys(
            ("connects", "disconnects", "connect_errors", "telemetry", "commands", "malformed"), 0
        )
        self.stats |= {"answers": 0, "events": 0}
        self.cars: dict[str, LoadCar] = {}
        for vin in vins:
            state = VehicleState(
                vin=vin,
                latitude=52.52 + rng.uniform(-0.05, 0.05),
                longitude=13.40 + rng.uniform(-0.08, 0.08),
                battery_soc=rng.uniform(20, 95),
            )
            client = FastMqttClient(
                CallbackAPIVersion.VERSION2, client_id=vin, protocol=mqtt.MQTTv5
            )
            client.username_pw_set(vin, password)
            tls = tls_for(vin)
            if tls is not None:
                client.tls_set_context(tls)
            car = LoadCar(state, CommandExecutor(state, verifier=verifier), client)
            self._wire(car)
            self.cars[vin] = car
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._tasks: set[asyncio.Task[None]] = set()  # reconnections under way
        self._stopping = False

    def connected(self) -> int:
        return sum(car.online for car in self.cars.values())

    # the loop drives each client ------------------------------------------------------------

    def _wire(self, car: LoadCar) -> None:
        client = car.client
        client.on_connect = lambda _c, _u, _f, reason, _p: self._connected(car, reason)
        client.on_disconnect = lambda *_args: self._disconnected(car)
        client.on_message = lambda _c, _u, message: self._received(car, message)
        client.on_socket_close = lambda _c, _u, _s: self._on_loop(self._unregister, car)
        car.flush = lambda: self._flush(car)

    def _on_loop(self, call: Callable[[LoadCar], None], car: LoadCar) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            call(car)
        else:  # paho calls from a connecting thread
            loop.call_soon_threadsafe(call, car)

    def _register(self, car: LoadCar) -> None:
        assert self._loop is not None
        sock = car.client.socket()
        if sock is None:
            return
        car.fd = sock.fileno()
        self._loop.add_reader(car.fd, self._readable, car)
        self._flush(car)

    def _unregister(self, car: LoadCar) -> None:
        if car.fd is not None and self._loop is not None:
            self._loop.remove_reader(car.fd)
            self._loop.remove_writer(car.fd)
        car.fd, car.writing = None, False

    def _flush(self, car: LoadCar) -> None:
        """Write what paho queued; what does not fit the socket now, the loop writes later.

        paho writes at once outside its callbacks when no write callback is set; within them
        (answers to a command) it only queues. With the write callbacks set it would instead
        register and unregister the socket for writing around every single publish.
        """
        client = car.client
        if car.fd is None:
            return  # connecting: paho writes the CONNECT itself
        if client.want_write():
            client.coalesce_queued()  # a command's PUBACK, answers and telemetry: one write
            client.loop_write()
        if client.want_write() and not car.writing and car.fd is not None and self._loop:
            self._loop.add_writer(car.fd, self._writable, car)
            car.writing = True

    def _writable(self, car: LoadCar) -> None:
        car.client.loop_write()
        if not car.client.want_write() and car.fd is not None and self._loop is not None:
            self._loop.remove_writer(car.fd)
            car.writing = False

    def _readable(self, car: LoadCar) -> None:
        client = car.client
        car.reading = True
        try:
            client.loop_read()
            sock = client.socket()
            # TLS may hold decrypted bytes the kernel no longer signals
            while isinstance(sock, ssl.SSLSocket) and sock.pending() and client.socket() is sock:
                client.loop_read()
        finally:
            car.reading = False
        if client.want_write():
            self._flush(car)

    # the car's life -------------------------------------------------------------------------

    async def _connect(self, car: LoadCar) -> None:
        """Connect ``car`` (again), backing off until it works or the fleet stops."""
        loop = asyncio.get_running_loop()
        client = car.client
        client.will_set(
            MqttTopic.presence(car.vin),
            car.presence(PresenceStatus.OFFLINE, "connection-lost"),
            qos=1,
            retain=True,
        )
        properties = connect_properties(session_expiry_s=self._session_expiry_s)
        while not self._stopping:
            try:
                await loop.run_in_executor(
                    self._connectors,
                    lambda: client.connect(
                        *self._address,
                        keepalive=self._keepalive_s,
                        clean_start=False,
                        properties=properties,
                    ),
                )
            except (OSError, ValueError):
                self.stats["connect_errors"] += 1
                await asyncio.sleep(car.backoff_s * random.uniform(0.5, 1.5))
                car.backoff_s = min(car.backoff_s * 2, self._reconnect_max_s)
                continue
            if not self._stopping:
                self._register(car)
            return

    def _connected(self, car: LoadCar, reason: Any) -> None:
        if reason.is_failure:
            self.stats["connect_errors"] += 1
            return  # paho closes the socket: _disconnected reconnects
        car.online, car.backoff_s = True, 1.0
        self.stats["connects"] += 1
        car.client.subscribe(MqttTopic.commands_filter(car.vin), qos=1)
        birth = car.presence(PresenceStatus.ONLINE, "connected")
        car.publish(MqttTopic.presence(car.vin), birth, retain=True)

    def _disconnected(self, car: LoadCar) -> None:
        if car.online:
            self.stats["disconnects"] += 1
        car.online = False
        if not self._stopping and self._loop is not None:
            delay = car.backoff_s * random.uniform(0.5, 1.5)
            self._loop.call_later(delay, self._reconnect, car)

    def _reconnect(self, car: LoadCar) -> None:
        if not self._stopping and self._loop is not None:
            self._tasks.add(task := self._loop.create_task(self._connect(car)))
            task.add_done_callback(self._tasks.discard)

    def _received(self, car: LoadCar, message: mqtt.MQTTMessage) -> None:
        command_id = message.topic.rsplit("/", 1)[-1]
        reaction = react(car.executor, command_id, bytes(message.payload), car.now_ms())
        self.stats["malformed" if reaction.malformed else "commands"] += 1
        for answer in reaction.answers:
            car.publish(MqttTopic.command_response(car.vin, command_id), encode(answer))
        self.stats["answers"] += len(reaction.answers)
        if reaction.relock and self._loop is not None:
            self._loop.call_later(self._trunk_relock_s, self._relock, car)
        if reaction.feature_change is not None:
            car.event(EventKind.FEATURE_STATE, reaction.feature_change)
            self.stats["events"] += 1
        if reaction.ran:
            car.report()
            self.stats["telemetry"] += 1

    def _relock(self, car: LoadCar) -> None:
        if car.online and relock(car.state):
            car.event(EventKind.TRUNK_RELOCKED, {"after_s": self._trunk_relock_s})
            car.report()

    # the fleet ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, duration_s: float = float("inf")) -> LoadSummary:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        started = time.monotonic()
        cars = list(self.cars.values())
        connecting = asyncio.create_task(self._connect_all(cars))
        reporting = asyncio.create_task(self._report(cars, stop))
        keeping = asyncio.create_task(self._keep_alive(cars, stop))
        try:
            await asyncio.wait_for(stop.wait(), duration_s)
        except TimeoutError:
            pass
        finally:
            self._stopping = True
            connecting.cancel()
            reporting.cancel()
            keeping.cancel()
            for task in list(self._tasks):
                task.cancel()
            connected_at_end = self.connected()
            await self._goodbye(cars)
            self._connectors.shutdown(wait=False, cancel_futures=True)
        return LoadSummary(
            vehicles=len(cars),
            duration_s=round(time.monotonic() - started, 1),
            connected_at_end=connected_at_end,
            **self.stats,
        )

    async def _connect_all(self, cars: list[LoadCar]) -> None:
        pace = 1 / self.connect_rate if self.connect_rate > 0 else 0.0
        start = time.monotonic()
        pending = set()
        for index, car in enumerate(cars):
            delay = start + index * pace - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.add(asyncio.create_task(self._connect(car)))
        await asyncio.gather(*pending)

    async def _report(self, cars: list[LoadCar], stop: asyncio.Event) -> None:
        """Every car reports once per interval; the fleet is spread over the interval in slots,
        so it never reports in one burst."""
        slots = max(1, round(self.interval_s / _REPORT_SLOT_S))
        slot_s = self.interval_s / slots
        due = time.monotonic() + slot_s
        slot = 0
        while not stop.is_set():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += slot_s
            for car in cars[slot::slots]:
                if car.online:
                    car.report()
                    self.stats["telemetry"] += 1
            slot = (slot + 1) % slots

    async def _keep_alive(self, cars: list[LoadCar], stop: asyncio.Event) -> None:
        """paho's keepalive and retry checks for every car, a few times per keepalive."""
        every_s = max(0.5, self._keepalive_s / 6)
        while not stop.is_set():
            await asyncio.sleep(every_s)
            for car in cars:
                if car.fd is not None:
                    car.client.loop_misc()

    async def _goodbye(self, cars: list[LoadCar]) -> None:
        """Each online car says it is going offline and disconnects; then every socket closes."""
        for car in cars:
            if car.online:
                car.publish(
                    MqttTopic.presence(car.vin),
                    car.presence(PresenceStatus.OFFLINE, "shutdown"),
                    retain=True,
                )
                car.online = False  # leaving, not lost
                car.client.disconnect()
        deadline = time.monotonic() + 5
        while any(car.fd is not None for car in cars) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for car in cars:
            self._unregister(car)
            car.client._sock_close()
