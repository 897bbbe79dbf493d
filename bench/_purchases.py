"""What bench/purchases.py drives: owners buying, other cars' commands, the killer, the CPU."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _common import cpu_seconds
from rich.console import Console

from fleetlink.adapters.supervisor import Supervisor
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.settings import Settings

console = Console(width=120)
TERMINAL = ("completed", "refunded", "failed")


def token(
    settings: Settings, name: str, role: UserRole, vins: list[str] | None = None
) -> dict[str, str]:
    UserRegistry(settings.users_file()).put(User(name, role, vins=vins or []))
    key = signing_key(settings, SigningPurpose.API_TOKENS)
    return {"Authorization": f"Bearer {issue_token(key, name, role.value, 86_400)}"}


def online(client: httpx.Client, prefix: str) -> list[str]:
    try:
        reply = client.get("/v1/vehicles", params={"online": True, "limit": 10_000})
        return [r["vin"] for r in reply.json()["vehicles"] if r["vin"].startswith(prefix)]
    except (httpx.HTTPError, KeyError, ValueError):
        return []


class Commands:
    """``flash`` commands to other cars on a schedule; the round trip of each, polled."""

    def __init__(self, client: httpx.Client, vins: list[str], rate: float) -> None:
        self._client, self._vins, self._rate = client, vins, rate
        self.round_trips: list[float] = []
        self.failed = 0

    def run(self, seconds: float) -> list[float]:
        self.round_trips = []
        threads = []
        start = time.monotonic()
        for index in range(int(seconds * self._rate)):
            delay = start + index / self._rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            thread = threading.Thread(target=self._one, daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(60)
        return self.round_trips

    def _one(self) -> None:
        begin = time.monotonic()
        try:
            vin = random.choice(self._vins)
            reply = self._client.post(f"/v1/vehicles/{vin}/commands", json={"name": "flash"})
            command_id = reply.json()["command_id"]
            while time.monotonic() - begin < 30:
                state = self._client.get(f"/v1/commands/{command_id}").json()["state"]
                if state == "succeeded":
                    self.round_trips.append((time.monotonic() - begin) * 1000)
                    return
                if state not in ("queued", "sent", "delivered"):
                    break
                time.sleep(0.02)
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        self.failed += 1


class Shop:
    """Owners buying: a feature the car can take, each purchase retried with its key until
    the API answers it."""

    def __init__(self, api_url: str, owner: dict[str, str], vins: list[str], seed: int) -> None:
        self._api_url, self._owner, self._vins = api_url, owner, vins
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.purchases: dict[str, str] = {}  # purchase id -> vin
        self.refused: Counter[str] = Counter()
        self.retries = 0

    def buy(self, count: int, threads: int = 8, rate: float | None = None) -> float:
        """``count`` purchases, as fast as answered or at ``rate`` a second; the time taken."""
        todo = iter(range(count))
        start = time.monotonic()

        def worker() -> None:
            with httpx.Client(base_url=self._api_url, headers=self._owner, timeout=10) as client:
                while True:
                    with self._lock:
                        index = next(todo, None)
                        vin = self._rng.choice(self._vins)
                    if index is None:
                        return
                    if rate is not None:
                        time.sleep(max(0.0, start + index / rate - time.monotonic()))
                    self._one(client, vin, uuid.uuid4().hex)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        return time.monotonic() - start

    def _one(self, client: httpx.Client, vin: str, key: str) -> None:
        for _ in range(200):
            try:
                offer = client.get(f"/v1/vehicles/{vin}/features")
                if offer.status_code != 200:
                    raise httpx.HTTPError(f"features: {offer.status_code}")
                buyable = [f["id"] for f in offer.json()["features"] if f["can_buy"]]
                if not buyable:  # this car has all it can take: another car
                    self.refused["nothing to buy"] += 1
                    with self._lock:
                        vin = self._rng.choice(self._vins)
                    continue
                body = {"feature": sorted(buyable)[0], "idempotency_key": key}
                reply = client.post(f"/v1/vehicles/{vin}/purchases", json=body)
                if reply.status_code in (200, 201):
                    with self._lock:
                        self.purchases[reply.json()["purchase_id"]] = vin
                    return
                if reply.status_code < 500:
                    self.refused[reply.json().get("error", str(reply.status_code))] += 1
                    return
            except httpx.HTTPError:
                pass
            self.retries += 1
            time.sleep(0.5)


def killer(
    services: Supervisor, stop: threading.Event, every_s: float, kills: Counter[str]
) -> None:
    rng = random.Random(7)
    while not stop.wait(rng.uniform(0.5, 1.5) * every_s):
        name = rng.choice(["api", "purchases"])
        handle = next(h for h in services.handles if h.program.name == name)
        if handle.pid is not None and handle.running:
            os.kill(handle.pid, signal.SIGKILL)
            kills[handle.program.name] += 1


def machine_busy() -> tuple[float, float]:
    """(busy, all) CPU time of the whole machine so far, in clock ticks (``/proc/stat``)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Load:
    """The machine's and the API's CPU over a phase, in cores."""

    def __init__(self, services: Supervisor) -> None:
        self._api = next(h for h in services.handles if h.program.name == "api")
        self._machine = machine_busy()
        self._api_s = cpu_seconds([self._api.pid or 0])
        self._start = time.monotonic()

    def cores(self) -> dict[str, float]:
        busy, total = machine_busy()
        span = time.monotonic() - self._start
        machine = (busy - self._machine[0]) / max(1.0, total - self._machine[1])
        api = (cpu_seconds([self._api.pid or 0]) - self._api_s) / span
        return {"machine": round(machine * (os.cpu_count() or 1), 2), "api": round(api, 2)}


def keep_checking(done: threading.Event, *supervisors: Supervisor) -> None:
    """Restart what exits (or was killed), every 0.2 s."""
    while not done.wait(0.2):
        for supervisor in supervisors:
            supervisor.check()


def settle(
    client: httpx.Client, purchase_ids: list[str], timeout: float
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for purchase_id in purchase_ids:
            if found.get(purchase_id, {}).get("state") in TERMINAL:
                continue
            try:
                reply = client.get(f"/v1/purchases/{purchase_id}")
                if reply.status_code == 200:
                    found[purchase_id] = reply.json()
            except httpx.HTTPError:
                pass
        open_ = [p for p in purchase_ids if found.get(p, {}).get("state") not in TERMINAL]
        console.print(f"purchases still open: {len(open_)}   ", end="\r")
        if not open_:
            break
        time.sleep(1.0)
    console.print()
    return found
