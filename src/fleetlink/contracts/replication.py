"""Records of ``fleet.replication-alerts``: what a side's replication monitor says about the flow
into its cluster (key: the flow, ``edge->cloud`` or ``cloud->edge``)."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class ReplicationAlertKind(StrEnum):
    LAG = "lag"  # the newest copied heartbeat is older than the bound
    EXPIRED = "expired"  # records deleted at the source before they crossed: lost


class ReplicationAlert(msgspec.Struct, frozen=True, omit_defaults=True):
    """``state``: ``raised`` or ``cleared`` for lag; ``lost`` for expired records (offsets
    ``first`` to ``last`` of ``topic`` partition ``partition``, ``count`` at most)."""

    flow: str
    kind: ReplicationAlertKind
    state: str
    ts: int  # epoch ms, when the monitor saw it
    lag_s: float | None = None
    since: int | None = None  # epoch ms: the last moment the flow was within its bound
    topic: str | None = None
    partition: int | None = None
    first: int | None = None
    last: int | None = None
    count: int | None = None
