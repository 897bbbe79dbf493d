"""Watching MirrorMaker 2 from its target side: replication lag, and records lost to retention."""

from __future__ import annotations

from fleetlink.contracts.topics import Site

HEARTBEATS = "heartbeats"  # MM2's beats, written into each target every emit interval


def remote_heartbeats(source: Site) -> str:
    """The topic, on the other cluster, holding the beats copied from ``source``: their age
    there is the replication lag of that direction."""
    return f"{source.value}.{HEARTBEATS}"
