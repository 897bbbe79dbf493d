"""Features on demand: the catalogue, the payment provider, the purchase processor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from pydantic import Field, field_validator, model_validator

from fleetlink.contracts.purchases import Feature, FeatureKind
from fleetlink.settings.base import LOCALHOST, Port, Section

DEFAULT_FEATURES = (
    Feature(
        id="heated-seats",
        name="Heated front seats",
        price=1500,
        currency="eur",
        kind=FeatureKind.SUBSCRIPTION,
        models=["fl-sedan", "fl-suv"],
        min_firmware="2026.10",
        period_days=30,
        trial_days=7,
    ),
    Feature(
        id="performance-boost",
        name="Performance boost: +50 kW",
        price=120000,
        currency="eur",
        kind=FeatureKind.ONE_TIME,
        models=["fl-sedan"],
        min_firmware="2026.20",
    ),
    Feature(
        id="extended-range",
        name="Extended range: the battery's reserve unlocked",
        price=90000,
        currency="eur",
        kind=FeatureKind.ONE_TIME,
        models=["fl-suv", "fl-van"],
        min_firmware="2026.30",
    ),
)


class SimulatorSettings(Section):
    """The local payment provider (``fleetlink payments simulate``): Stripe's behaviour, and
    chaos that every purchase test runs with."""

    host: str = LOCALHOST
    port: Port = 8470
    seed: int = 1
    # a payment is confirmed (or declined) this long after it is created (s)
    confirm_delay_s: float = Field(default=0.2, ge=0, le=3600)
    decline_p: float = Field(default=0.0, ge=0, le=1)
    duplicate_p: float = Field(default=0.0, ge=0, le=1)  # an event delivered twice
    reorder_p: float = Field(default=0.0, ge=0, le=1)  # held back behind the next one
    max_delay_s: float = Field(default=0.0, ge=0, le=3600)  # each delivery late by up to this
    # the receiving endpoint answers nothing for this long after start (s): retries must carry
    down_for_s: float = Field(default=0.0, ge=0, le=86400)
    # retries: first after this, growing by ``retry_factor``, up to ``max_attempts`` in all
    retry_first_s: float = Field(default=0.5, gt=0, le=3600)
    retry_factor: float = Field(default=2.0, ge=1, le=10)
    max_attempts: int = Field(default=12, ge=1, le=1000)
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=120)


class PaymentsSettings(Section):
    """The payment provider: where it is, and the webhook's shared secrets."""

    # None: the local simulator (``payments.simulator``)
    provider_url: str | None = None
    # one secret per line; every one is accepted (rotation: old and new side by side);
    # default: <stack.state_dir>/payments/webhook-secrets, generated at first use
    webhook_secrets_file: Path | None = None
    tolerance_s: int = Field(default=300, ge=1, le=86400)  # oldest signature timestamp taken
    provider_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # where the provider delivers webhooks: the API's address unless set
    webhook_url: str | None = None
    simulator: SimulatorSettings = SimulatorSettings()


class PurchasesSettings(Section):
    """The catalogue and the purchase processor (``fleetlink purchases run``)."""

    # each entry as ``contracts.purchases.Feature`` describes it
    features: list[dict[str, Any]] = Field(
        default_factory=lambda: [msgspec.to_builtins(f) for f in DEFAULT_FEATURES]
    )
    group_id: str = Field(default="fleetlink-purchases", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    # stable per processor instance: a restarted one fences its killed predecessor at once
    transactional_id: str = Field(
        default="fleetlink-purchases-0", pattern=r"^[A-Za-z0-9._-]{1,200}$"
    )
    # a transaction left open by a killed processor blocks readers at most this long
    transaction_timeout_s: float = Field(default=10.0, ge=1, le=900)
    # a car that has not turned the feature on this long after it was paid for: money back
    activation_ttl_s: int = Field(default=3 * 86400, ge=1, le=30 * 86400)
    # a purchase the provider never confirmed paid (nor declined) this long: failed; a payment
    # that still comes later activates it then
    payment_timeout_s: int = Field(default=86_400, ge=1, le=30 * 86400)
    # how long a "day" of the catalogue is (s): subscription periods in tests pass in seconds
    day_s: float = Field(default=86_400.0, gt=0, le=86_400)
    # a subscription's next period is charged this long before the paid one ends (days)
    renew_ahead_days: float = Field(default=1.0, ge=0, le=30)
    # a failed call to the provider is tried again after this long (s)
    provider_retry_s: float = Field(default=1.0, gt=0, le=3600)

    @field_validator("features")
    @classmethod
    def _features_are_features(cls, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, entry in enumerate(entries):
            try:
                msgspec.convert(entry, Feature)
            except msgspec.ValidationError as error:
                raise ValueError(f"entry {index}: {error}") from None
        return entries

    @property
    def catalogue(self) -> list[Feature]:
        return [msgspec.convert(entry, Feature) for entry in self.features]

    @model_validator(mode="after")
    def _catalogue_is_consistent(self) -> PurchasesSettings:
        ids = [feature.id for feature in self.catalogue]
        twice = sorted({fid for fid in ids if ids.count(fid) > 1})
        if twice:
            raise ValueError(f"features: {twice[0]!r} is listed twice")
        for feature in self.catalogue:
            subscription = feature.kind is FeatureKind.SUBSCRIPTION
            if subscription != (feature.period_days is not None):
                raise ValueError(
                    f"features: {feature.id!r}: period_days is for subscriptions, and they need it"
                )
        return self

    def feature(self, feature_id: str) -> Feature | None:
        return next((f for f in self.catalogue if f.id == feature_id), None)
