"""The car's flash for OTA: the boot record, the partial download and the two slots.

With a directory, what a power loss (``kill -9``) must not lose is on disk: ``ota.json`` (the
``FlashRecord``, written to a temporary file and renamed over the old one, so it is always
either the old or the new record), ``download.part`` (appended to; a restart resumes after its
last byte) and ``slot-a.bin`` / ``slot-b.bin``. Without one (``directory=None``, a simulated
fleet of thousands) the record lives in memory and no image bytes are kept, only their running
SHA-256 and count: the slots are bookkeeping.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Final

import msgspec

from fleetlink.vehicle.ota_rules import FlashRecord, Slot, fresh_record

RECORD_FILE: Final = "ota.json"
DOWNLOAD_FILE: Final = "download.part"
_READ_BYTES: Final = 1 << 20

_record_decoder = msgspec.json.Decoder(FlashRecord)


class Flash:
    def __init__(self, directory: Path | None, firmware: str) -> None:
        """Load the record kept in ``directory``; a car without one runs ``firmware``."""
        self.directory = directory
        self._hash = hashlib.sha256()
        self._size = 0
        self.record = self._load() or fresh_record(firmware)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            if self.record.job is None:
                self._unlink(DOWNLOAD_FILE)  # left by a job that ended as the power went
            else:
                self._rehash()

    def _load(self) -> FlashRecord | None:
        if self.directory is None:
            return None
        try:
            record = _record_decoder.decode((self.directory / RECORD_FILE).read_bytes())
        except (OSError, msgspec.DecodeError):
            return None  # never written (a new car), or unreadable: start as one
        return record if record.active in record.slots else None

    def save(self) -> None:
        """Write the record so that a power loss leaves the old or the new one, never half."""
        if self.record.job is not None:
            self.record.job.downloaded = self._size
        if self.directory is None:
            return
        target = self.directory / RECORD_FILE
        partial = target.with_suffix(".tmp")
        partial.write_bytes(msgspec.json.encode(self.record))
        partial.replace(target)

    # the download -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes of the image downloaded so far."""
        return self._size

    def digest(self) -> str:
        return self._hash.hexdigest()

    def append(self, data: bytes) -> None:
        if self.directory is not None:
            with (self.directory / DOWNLOAD_FILE).open("ab") as file:
                file.write(data)
        self._hash.update(data)
        self._size += len(data)

    def drop_download(self) -> None:
        self._hash = hashlib.sha256()
        self._size = 0
        self._unlink(DOWNLOAD_FILE)

    def _rehash(self) -> None:
        """After a restart: the running hash of the partial file, to go on from its end."""
        path = self.directory / DOWNLOAD_FILE if self.directory is not None else None
        if path is None or not path.is_file():
            return
        with path.open("rb") as file:
            while block := file.read(_READ_BYTES):
                self._hash.update(block)
                self._size += len(block)

    # the slots --------------------------------------------------------------------------------

    def write_slot(self, slot: Slot) -> None:
        """The verified download becomes the content of ``slot``."""
        if self.directory is not None:
            part = self.directory / DOWNLOAD_FILE
            if part.is_file():
                part.replace(self.directory / f"slot-{slot}.bin")
        self._hash = hashlib.sha256()
        self._size = 0

    def _unlink(self, name: str) -> None:
        if self.directory is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
