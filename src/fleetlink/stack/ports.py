"""Loopback ports: find free ones, check whether one is taken, wait until one accepts."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


# ports this process handed out already: free until their user binds them, not to hand out twice
_handed_out: set[int] = set()


def free_port_block(size: int, low: int = 20000, high: int = 32000) -> int:
    """First port of ``size`` consecutive free ports, below Linux's ephemeral range, none of
    them handed out before by this process."""
    candidates = list(range(low, high - size, size))
    random.shuffle(candidates)
    for first in candidates:
        block = range(first, first + size)
        if _handed_out.isdisjoint(block) and all(port_is_free(port) for port in block):
            _handed_out.update(block)
            return first
    raise OSError(f"no {size} consecutive free ports between {low} and {high}")


def stack_on_free_ports(
    state_dir: Path, brokers: int = 1, *, edge_cloud: bool = False
) -> dict[str, Any]:
    """The ``stack`` settings of a stack of its own: state under ``state_dir``, free ports;
    ``edge_cloud``: with the cloud cluster's ports too."""
    first = free_port_block(8 * brokers + 2 if edge_cloud else 2 * brokers + 2)
    settings = {
        "state_dir": state_dir,
        "brokers": brokers,
        "kafka_port": first,
        "controller_port": first + brokers,
        "mqtt_port": first + 2 * brokers,
        "mqtt_password_port": first + 2 * brokers + 1,
    }
    if edge_cloud:
        settings |= {
            "topology": "edge-cloud",
            "cloud_kafka_port": first + 2 * brokers + 2,
            "cloud_controller_port": first + 3 * brokers + 2,
            "link_port": first + 4 * brokers + 2,
        }
    return settings
