"""The poison journal: which input was this process handling when it died, and how often.

An input that crashes its consumer comes back after the restart (the broker redelivers an
un-acknowledged message, Kafka the uncommitted record) and would crash it again, for ever. So
before handling an input the process notes its digest in a small memory-mapped file, and clears
it afterwards: two stores into the page cache, which survive ``kill -9`` of the process. A
process that starts and finds a digest there counts one crash against it (in a JSON file
beside it); once an input has ``max_crashes`` crashes, it is dead-lettered as ``poison``
instead of handled.

One journal per process identity (a worker's client id, a consumer group member), because the
broker hands un-acknowledged messages back to the same client id.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    from fleetlink.settings import Settings as RuntimeOwner

DIGEST_SIZE: Final = 16
_EMPTY: Final = bytes(DIGEST_SIZE)
_KEEP: Final = 1000  # digests remembered; the oldest are forgotten first


class _Crashes(msgspec.Struct):
    """One input that was in hand when the process died."""

    digest: str
    crashes: int
    last_ms: int


def digest(*parts: bytes) -> bytes:
    """The journal's name for an input: a hash of its identifying parts."""
    hasher = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for part in parts:
        hasher.update(len(part).to_bytes(4, "big"))
        hasher.update(part)
    return hasher.digest()


class PoisonJournal:
    def __init__(self, directory: Path, name: str, *, max_crashes: int, log: logging.Logger):
        directory.mkdir(parents=True, exist_ok=True)
        self.max_crashes = max_crashes
        self._log = log
        self._counts_file = directory / f"{name}.crashes.json"
        self._crashes: dict[str, _Crashes] = self._load()
        slot_file = directory / f"{name}.in-hand"
        fd = os.open(slot_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < DIGEST_SIZE:
                os.ftruncate(fd, DIGEST_SIZE)
            self._slot = mmap.mmap(fd, DIGEST_SIZE)
        finally:
            os.close(fd)
        left = bytes(self._slot[:DIGEST_SIZE])
        if left != _EMPTY:
            self._count_crash(left.hex())
            self._slot[:DIGEST_SIZE] = _EMPTY

    @classmethod
    def of(cls, settings: RuntimeOwner, name: str, log: logging.Logger) -> PoisonJournal:
        """The journal of the process identity ``name``, where the settings keep journals."""
        return cls(
            settings.journal_dir(),
            name,
            max_crashes=settings.runtime.poison_after_crashes,
            log=log,
        )

    def _load(self) -> dict[str, _Crashes]:
        with contextlib.suppress(FileNotFoundError):
            try:
                entries = msgspec.json.decode(self._counts_file.read_bytes(), type=list[_Crashes])
            except (msgspec.DecodeError, UnicodeDecodeError):
                self._log.warning("poison journal unreadable; starting afresh")
                return {}
            return {entry.digest: entry for entry in entries}
        return {}

    def _count_crash(self, key: str) -> None:
        entry = self._crashes.get(key) or _Crashes(key, 0, 0)
        entry.crashes += 1
        entry.last_ms = time.time_ns() // 1_000_000
        self._crashes[key] = entry
        self._log.warning(
            "the last run died handling an input",
            extra={"digest": key, "crashes": entry.crashes, "poison_after": self.max_crashes},
        )
        kept = sorted(self._crashes.values(), key=lambda e: e.last_ms)[-_KEEP:]
        self._crashes = {e.digest: e for e in kept}
        temporary = self._counts_file.with_suffix(".tmp")
        temporary.write_bytes(msgspec.json.encode(kept))
        temporary.replace(self._counts_file)

    def crashes(self, key: bytes) -> int:
        """Crashes counted against the input ``key`` (0 for almost every input)."""
        if not self._crashes:
            return 0
        entry = self._crashes.get(key.hex())
        return 0 if entry is None else entry.crashes

    def is_poison(self, key: bytes) -> bool:
        return bool(self._crashes) and self.crashes(key) >= self.max_crashes

    def holding(self, key: bytes) -> None:
        """About to handle ``key``: a crash from now until ``done`` counts against it."""
        self._slot[:DIGEST_SIZE] = key

    def done(self) -> None:
        self._slot[:DIGEST_SIZE] = _EMPTY

    def close(self) -> None:
        self._slot.close()
