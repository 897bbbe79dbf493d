"""The WAN between edge and cloud on one machine: a TCP proxy every MirrorMaker 2 reaches its
remote cluster through, which ``fleetlink stack link cut`` cuts.

Each Kafka node of the edge-cloud stack has a second listener, ``LINK``, that advertises the
proxy's port instead of its own: a client that bootstraps through the proxy is told to reach
every node through it too, so no connection slips past a cut. The proxy reads its mode from a
file (``up``, ``reset``, ``blackhole``) ten times a second:

* ``reset``: open connections are reset (RST) and new ones are reset at once, as when a router
  on the way restarts; clients notice within a round trip.
* ``blackhole``: connections stay open and new ones are accepted, but no byte goes through in
  either direction, as when a link silently drops packets; clients notice only by their
  timeouts. Healing resets the connections whose bytes were dropped (their streams are broken).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import struct
from enum import StrEnum
from pathlib import Path

log = logging.getLogger("fleetlink.stack.link")

POLL_S = 0.1
_CHUNK = 64 * 1024


class LinkMode(StrEnum):
    UP = "up"
    RESET = "reset"
    BLACKHOLE = "blackhole"


def read_mode(mode_file: Path) -> LinkMode:
    """The mode in ``mode_file``; ``up`` when it is missing or unreadable."""
    try:
        return LinkMode(mode_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return LinkMode.UP


def write_mode(mode_file: Path, mode: LinkMode) -> None:
    mode_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = mode_file.with_suffix(".tmp")
    temporary.write_text(mode.value + "\n", encoding="utf-8")
    temporary.replace(mode_file)


class _Connection:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.writers = (client, upstream)
        self.dropped = False  # bytes were swallowed by a blackhole: the streams are broken

    def reset(self) -> None:
        for writer in self.writers:
            _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN: the peer sees the connection reset."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class LinkProxy:
    """Forward ``listen port -> target port`` on ``host`` for every route, under the file's mode."""

    def __init__(self, routes: list[tuple[int, int]], mode_file: Path, host: str) -> None:
        self.routes = routes
        self.mode_file = mode_file
        self.host = host
        self.mode = read_mode(mode_file)
        self.connections: set[_Connection] = set()

    async def serve(self) -> None:
        self._servers = [
            await asyncio.start_server(
                functools.partial(self._accept, target=target), self.host, listen
            )
            for listen, target in self.routes
        ]
        log.info("link %s: %s", self.mode, ", ".join(f"{a}->{b}" for a, b in self.routes))
        while True:
            await asyncio.sleep(POLL_S)
            mode = read_mode(self.mode_file)
            if mode is not self.mode:
                self._switch(mode)

    def _switch(self, mode: LinkMode) -> None:
        log.info("link %s -> %s (%d connections)", self.mode, mode, len(self.connections))
        for connection in list(self.connections):
            if mode is LinkMode.RESET or (mode is LinkMode.UP and connection.dropped):
                connection.reset()
        self.mode = mode

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: int
    ) -> None:
        if self.mode is LinkMode.RESET:
            _reset(writer)
            return
        if self.mode is LinkMode.BLACKHOLE:
            await self._swallow(reader, writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, target)
        except OSError:
            _reset(writer)
            return
        connection = _Connection(writer, up_writer)
        self.connections.add(connection)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, connection),
                self._pump(up_reader, writer, connection),
            )
        finally:
            self.connections.discard(connection)
            for side in connection.writers:
                side.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        try:
            while data := await reader.read(_CHUNK):
                if self.mode is not LinkMode.UP:
                    connection.dropped = True
                    continue
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # a clean close travels on as one
        except OSError:
            connection.reset()  # a reset one travels on as a reset

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A connection made during a blackhole: its bytes go nowhere until it is healed."""
        held = _Connection(writer, writer)
        held.dropped = True
        self.connections.add(held)
        try:
            while await reader.read(_CHUNK):
                pass
        except OSError:
            pass
        finally:
            self.connections.discard(held)
            writer.transport.abort()


def serve(routes: list[tuple[int, int]], mode_file: Path, host: str) -> None:
    """Run the proxy until the process is stopped."""
    asyncio.run(LinkProxy(routes, mode_file, host).serve())


def link_argv(python: str, mode_file: Path, routes: list[tuple[int, int]], host: str) -> list[str]:
    """The command line of the link process (``python -m fleetlink.stack.link``)."""
    return [python, "-m", __name__, str(mode_file), host, *(f"{a}:{b}" for a, b in routes)]


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    mode_path, address, *pairs = sys.argv[1:]
    routes = [(int(a), int(b)) for a, b in (pair.split(":") for pair in pairs)]
    with contextlib.suppress(KeyboardInterrupt):
        serve(routes, Path(mode_path), address)
