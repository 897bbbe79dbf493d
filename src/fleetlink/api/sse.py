"""Live streams as Server-Sent Events: items a read model hears, sent as they come.

A read model's thread hands batches to a listener; each stream keeps a bounded queue of them
(a client this far behind loses live items; the GET endpoints hold the truth) and writes what
is waiting in one frame batch, with a comment line as keepalive.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Final, TypeVar

from fastapi.responses import StreamingResponse

T = TypeVar("T")

_QUEUE_BATCHES: Final = 10_000
_KEEPALIVE_S: Final = 15.0

Unlisten = Callable[[], None]
Listen = Callable[[Callable[[list[T]], None]], Unlisten]


def frame(event: str, event_id: str, data: bytes) -> bytes:
    return f"event: {event}\nid: {event_id}\ndata: ".encode() + data + b"\n\n"


def live_stream(
    listen: Listen[T],
    chosen: Callable[[T], bool],
    to_frame: Callable[[T], bytes],
    opening: Callable[[], Iterable[bytes]] = tuple,
) -> StreamingResponse:
    """A response streaming ``opening()`` (frames of what holds now), a ``ready`` event, then
    every item ``listen`` delivers that the caller may see (``chosen``)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[list[T]] = asyncio.Queue(maxsize=_QUEUE_BATCHES)

    def deliver(items: list[T]) -> None:
        picked = [item for item in items if chosen(item)]
        if picked:
            loop.call_soon_threadsafe(_offer, queue, picked)

    async def stream() -> AsyncIterator[bytes]:
        unlisten = listen(deliver)  # before the opening: nothing falls between the two
        try:
            yield b"".join(opening()) + b"event: ready\ndata: {}\n\n"
            while True:
                try:
                    items = await asyncio.wait_for(queue.get(), _KEEPALIVE_S)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                while not queue.empty():  # everything that is waiting goes in one write
                    items = items + queue.get_nowait()
                yield b"".join(to_frame(item) for item in items)
        finally:
            unlisten()

    return _event_stream(stream())


def _offer(queue: asyncio.Queue[list[T]], items: list[T]) -> None:
    if not queue.full():
        queue.put_nowait(items)


def coalesced_stream(
    listen: Listen[T],
    chosen: Callable[[T], bool],
    key: Callable[[T], str],
    to_frame: Callable[[list[T]], bytes],
    every_s: float,
    opening: Callable[[], Iterable[bytes]] = tuple,
) -> StreamingResponse:
    """Like ``live_stream``, but at most one frame each ``every_s``: the items heard since the
    last one, the latest per ``key`` (a dashboard wants where each car is now, not every step
    on the way; a slow client never falls behind)."""
    loop = asyncio.get_running_loop()
    pending: dict[str, T] = {}
    news = asyncio.Event()

    def take(items: list[T]) -> None:
        for item in items:
            pending[key(item)] = item
        news.set()

    def deliver(items: list[T]) -> None:
        picked = [item for item in items if chosen(item)]
        if picked:
            loop.call_soon_threadsafe(take, picked)

    async def stream() -> AsyncIterator[bytes]:
        unlisten = listen(deliver)
        try:
            yield b"".join(opening()) + b"event: ready\ndata: {}\n\n"
            while True:
                try:
                    await asyncio.wait_for(news.wait(), _KEEPALIVE_S)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                news.clear()
                items = list(pending.values())
                pending.clear()
                yield to_frame(items)
                await asyncio.sleep(every_s)
        finally:
            unlisten()

    return _event_stream(stream())


def _event_stream(stream: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
