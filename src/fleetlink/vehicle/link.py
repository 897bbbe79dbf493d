"""The agent's waits on its MQTT link (aiomqtt), each ending as soon as the link is lost.

aiomqtt does not end a pending publish when paho reports the connection gone: it would wait for
a PUBACK that cannot come until its timeout (15 s), and a car would sit on its outbox meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import aiomqtt


def link_lost(client: aiomqtt.Client) -> asyncio.Future[None]:
    """Done when paho reports the connection gone (aiomqtt keeps it private)."""
    return client._disconnected


def acknowledge_lost_link(client: aiomqtt.Client) -> None:
    """Read the cause of a lost link from the future only aiomqtt awaits, so asyncio does not
    report it as never retrieved (the agent already counted the disconnect)."""
    future = link_lost(client)
    if future.done() and not future.cancelled():
        future.exception()


async def unless_link_lost(client: aiomqtt.Client, call: Awaitable[None]) -> None:
    """Await ``call`` (a publish, say); raise MqttError at once if the link goes first."""
    task = asyncio.ensure_future(call)
    await asyncio.wait([task, link_lost(client)], return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        raise aiomqtt.MqttError("the link was lost before the broker acknowledged")
    task.result()


async def wait_event(
    event: asyncio.Event, stop: asyncio.Event, timeout: float, client: aiomqtt.Client
) -> None:
    """Until ``event`` or ``stop`` is set or ``timeout`` passed; MqttError if the link is lost."""
    lost = link_lost(client)
    waiters: list[asyncio.Future[Any]] = [
        asyncio.ensure_future(event.wait()),
        asyncio.ensure_future(stop.wait()),
    ]
    try:
        await asyncio.wait([*waiters, lost], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    if lost.done():
        raise aiomqtt.MqttError("the link was lost")


def payload_bytes(payload: object) -> bytes:
    """An MQTT payload as bytes (aiomqtt types payloads loosely; paho gives bytes)."""
    return bytes(payload) if isinstance(payload, bytes | bytearray) else b""


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        return
