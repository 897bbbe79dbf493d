"""The demo's feature shop: an owner buys a feature the car can take, now and then, through the
API; the provider simulator charges, the purchase processor entitles, the car turns it on (or
refuses it and the money goes back). Shows how the purchases end, beside the provider's ledger."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from typing import Any

import httpx
from rich.table import Table

from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.settings import Settings

DEMO_OWNER = "demo-owner"
_OPEN = frozenset({"pending-payment", "activating", "refunding"})


class DemoShop:
    def __init__(self, settings: Settings, api: httpx.Client, every_s: float = 6.0) -> None:
        self._users = UserRegistry(settings.users_file())
        token = issue_token(
            signing_key(settings, SigningPurpose.API_TOKENS), DEMO_OWNER, "owner", 86_400
        )
        self._api = api
        self._owner = {"Authorization": f"Bearer {token}"}
        sim = settings.payments.simulator
        self._provider = f"http://{sim.host}:{sim.port}"
        self._every_s = every_s
        self._next = time.monotonic() + every_s
        self._rng = random.Random()
        self._open: set[str] = set()
        self.ended: Counter[str] = Counter()
        self.ledger: dict[str, int] = {}
        self.last = "waiting for the API"

    def tick(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._every_s
        try:
            self._follow()
            self._buy()
            ledger = httpx.get(f"{self._provider}/v1/test/ledger", timeout=2).json()
            self.ledger = {kind: len(ledger[kind]) for kind in ("charges", "refunds", "declines")}
        except (httpx.HTTPError, ValueError, KeyError) as error:
            self.last = f"not answering yet ({type(error).__name__})"

    def _buy(self) -> None:
        online = self._get("/v1/vehicles", {"online": True, "limit": 500}, self._api.headers)
        cars = [row["vin"] for row in online["vehicles"]]
        if not cars:
            return
        vin = self._rng.choice(cars)
        owned = self._users.get(DEMO_OWNER)
        if owned is None or vin not in owned.vins:
            vins = sorted({*(owned.vins if owned else []), vin})[-1000:]
            self._users.put(User(DEMO_OWNER, UserRole.OWNER, vins=vins))
        offer = self._get(f"/v1/vehicles/{vin}/features", {}, self._owner)["features"]
        buyable = [f["id"] for f in offer if f["can_buy"]]
        if not buyable:
            self.last = f"{vin}: nothing it can take"
            return
        feature = self._rng.choice(buyable)
        body = {"feature": feature, "idempotency_key": uuid.uuid4().hex}
        reply = self._api.post(f"/v1/vehicles/{vin}/purchases", json=body, headers=self._owner)
        self.last = f"{feature} for {vin}: HTTP {reply.status_code}"
        if reply.status_code == 201:
            self._open.add(reply.json()["purchase_id"])

    def _follow(self) -> None:
        for purchase_id in sorted(self._open):
            state = self._get(f"/v1/purchases/{purchase_id}", {}, self._owner)["state"]
            if state not in _OPEN:
                self._open.discard(purchase_id)
                self.ended[state] += 1

    def _get(self, path: str, params: dict[str, Any], headers: Any) -> dict[str, Any]:
        reply = self._api.get(path, params=params, headers=headers)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def table(self) -> Table:
        title = "features on demand (buy -> provider -> entitlement -> car, or money back)"
        table = Table(title=title, title_justify="left")
        for column in ("open", "completed", "refunded", "failed", "charges", "refunds"):
            table.add_column(column, justify="right")
        table.add_column("last", overflow="fold")
        table.add_row(
            f"{len(self._open):,}",
            *(f"{self.ended[state]:,}" for state in ("completed", "refunded", "failed")),
            *(f"{self.ledger.get(kind, 0):,}" for kind in ("charges", "refunds")),
            self.last,
        )
        return table
