"""The API's read model of features on demand: ``fleet.purchases`` and ``fleet.entitlements``
followed from their beginning (every API instance holds the whole picture). The processor
stays their only writer; a purchase the API just asked for is visible here at once."""

from __future__ import annotations

import logging

from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.purchases import Entitlement, Purchase, entitlement_key
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings


class PurchaseReadModel(FollowedModel[Purchase]):
    def __init__(self, settings: Settings, log: logging.Logger, source: RecordSource) -> None:
        topics = settings.topic_map()
        self._purchases_topic = topics[KafkaTopic.PURCHASES]
        super().__init__(
            source,
            [self._purchases_topic, topics[KafkaTopic.ENTITLEMENTS]],
            log,
            name="purchases-view",
        )
        self.purchases: dict[str, Purchase] = {}
        self.by_vin: dict[str, list[str]] = {}
        self.entitlements: dict[str, Entitlement] = {}

    def purchase(self, purchase_id: str) -> Purchase | None:
        with self._lock:
            return self.purchases.get(purchase_id)

    def purchases_of(self, vin: str) -> list[Purchase]:
        with self._lock:
            return [self.purchases[p] for p in self.by_vin.get(vin, [])]

    def entitlement(self, vin: str, feature: str) -> Entitlement | None:
        with self._lock:
            return self.entitlements.get(entitlement_key(vin, feature))

    def asked(self, purchase: Purchase) -> None:
        """A purchase the API just asked for: shown until the processor's own record comes."""
        with self._lock:
            if purchase.purchase_id not in self.purchases:
                self._keep(purchase)

    def _keep(self, purchase: Purchase) -> None:
        known = self.purchases.get(purchase.purchase_id)
        if known is None:
            self.by_vin.setdefault(purchase.vin, []).append(purchase.purchase_id)
        elif len(known.history) > len(purchase.history):
            return  # the processor only moves forward: an older record is a late copy
        self.purchases[purchase.purchase_id] = purchase

    def _take(self, records: list[SourceRecord]) -> list[Purchase]:
        news: list[Purchase] = []
        for message in records:
            try:
                if message.topic() == self._purchases_topic:
                    purchase = decode(Purchase, message.value())
                    self._keep(purchase)
                    news.append(purchase)
                else:
                    entitlement = decode(Entitlement, message.value())
                    known = self.entitlements.get(entitlement.key)
                    if known is None or known.version <= entitlement.version:
                        self.entitlements[entitlement.key] = entitlement
            except UndecodableError as unreadable:
                self.skipped.skip(message, unreadable)
        return news
