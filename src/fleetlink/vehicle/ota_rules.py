"""The car's OTA decisions, pure: what an order or a cancel does to the job, the A/B slot
bookkeeping (install, boot, fall back), where a download resumes and the simulator's plan of
failing boots. ``flash`` stores what these decide, ``ota`` does the I/O.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Final, Literal

import msgspec

from fleetlink.contracts.campaigns import SoftwareUpdateParams

Slot = Literal["a", "b"]

STANDING_KMH: Final = 0.5  # below this the car stands (the trunk command uses the same bound)


def other_slot(slot: Slot) -> Slot:
    return "b" if slot == "a" else "a"


class FlashJob(msgspec.Struct):
    """The one update the car works on, as kept in flash (it survives a power loss)."""

    params: SoftwareUpdateParams
    downloaded: int = 0  # bytes in the partial file when the record was written
    verified: bool = False  # length and SHA-256 matched: it waits to be parked


class FlashRecord(msgspec.Struct):
    """The car's boot record: which slot runs, what each slot holds, an install under way."""

    active: Slot = "a"
    slots: dict[str, str] = {}  # slot -> version written there
    trying: Slot | None = None  # being written or booted for the first time
    job: FlashJob | None = None

    @property
    def installed(self) -> str:
        return self.slots[self.active]

    @property
    def installing(self) -> bool:
        return self.trying is not None


def fresh_record(firmware: str) -> FlashRecord:
    """A car that never updated: it runs ``firmware`` from slot a."""
    return FlashRecord(active="a", slots={"a": firmware})


# orders and cancels -------------------------------------------------------------------------


class Order(StrEnum):
    """What a ``software.update`` that passed the signature checks does."""

    NOTHING_TO_DO = "nothing-to-do"  # the car runs that version already: succeeded at once
    KEEP = "keep"  # the same image again (a retry): the job goes on with the fresh order
    START = "start"
    REPLACE = "replace"  # another campaign's job that has not started installing is cancelled
    BUSY = "busy"  # another image is being installed: the order fails


def order_decision(record: FlashRecord, update: SoftwareUpdateParams) -> Order:
    if update.image.version == record.installed:
        return Order.NOTHING_TO_DO
    job = record.job
    if job is None:
        return Order.START
    same = (job.params.campaign_id, job.params.image.sha256) == (
        update.campaign_id,
        update.image.sha256,
    )
    if same:
        return Order.KEEP
    return Order.BUSY if record.installing else Order.REPLACE


class Cancel(StrEnum):
    DROP = "drop"  # the job goes, its bytes too
    REFUSE = "refuse"  # already installing: too late (the slot is half written)
    NO_JOB = "no-job"  # nothing of that campaign to cancel: done


def cancel_decision(record: FlashRecord, campaign_id: str) -> Cancel:
    job = record.job
    if job is None or job.params.campaign_id != campaign_id:
        return Cancel.NO_JOB
    return Cancel.REFUSE if record.installing else Cancel.DROP


# slots --------------------------------------------------------------------------------------


def begin_install(record: FlashRecord) -> Slot:
    """Mark the inactive slot "trying" (before a byte is written to it) and return it."""
    assert record.job is not None, "an install needs a job"
    slot = other_slot(record.active)
    record.trying = slot
    record.slots[slot] = record.job.params.image.version
    return slot


def finish_boot(record: FlashRecord, booted: bool) -> None:
    """After the reboot: the tried slot becomes active, or the bootloader keeps the old one."""
    tried = record.trying
    if tried is None:
        return
    if booted:
        record.active = tried
    else:
        record.slots.pop(tried, None)  # what it holds never ran: treat it as empty
    record.trying = None
    record.job = None


def recover(record: FlashRecord) -> tuple[FlashJob | None, str | None]:
    """At power-on: a slot still "trying" means the power went mid-install. The bootloader
    runs the old slot; returns the lost job and the failure reason (None, None: all well)."""
    if record.trying is None:
        return None, None
    job = record.job
    finish_boot(record, booted=False)
    return job, f"power-lost: fell back to slot {record.active}"


class ParkWatch:
    """Whether the car has stood still for ``wait_s`` (a stop at a red light is not parked)."""

    def __init__(self, wait_s: float) -> None:
        self._wait_s = wait_s
        self._since: float | None = None

    def parked(self, speed_kmh: float, now_s: float) -> bool:
        if speed_kmh >= STANDING_KMH:
            self._since = None
            return False
        if self._since is None:
            self._since = now_s
        return now_s - self._since >= self._wait_s


# downloads ----------------------------------------------------------------------------------


def resume_offset(have: int, length: int) -> int:
    """Where to ask the server to start: after what is kept, or from 0 when the kept part
    cannot be a prefix of the image (longer than it)."""
    return have if 0 <= have <= length else 0


class Reply(StrEnum):
    """What an HTTP answer to a (range) request means for the download."""

    APPEND = "append"  # the bytes from the offset on
    RESTART = "restart"  # the whole image from byte 0: what is kept goes
    COMPLETE = "complete"  # nothing more to read
    RETRY = "retry"  # the server or the network, not the request: later
    FAIL = "fail"  # the request itself is wrong (token, URL): asking again will not help


def reply_kind(status: int, offset: int, length: int, content_range: str | None) -> Reply:
    if status == 206:
        start = _range_start(content_range)
        return Reply.APPEND if start == offset else Reply.RESTART
    if status == 200:
        return Reply.RESTART if offset else Reply.APPEND
    if status == 416:  # "range not satisfiable": complete, or the file is not what was kept
        return Reply.COMPLETE if offset == length else Reply.RESTART
    if status in (408, 429) or status >= 500:  # overloaded or down: it passes
        return Reply.RETRY
    return Reply.FAIL


def _range_start(content_range: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes 100-199/200``."""
    if content_range is None or not content_range.startswith("bytes "):
        return None
    first = content_range[6:].split("-", 1)[0]
    return int(first) if first.isdigit() else None


def announced_length(
    status: int, content_range: str | None, content_length: str | None
) -> int | None:
    """The image size the server says it has (``Content-Range: bytes 0-9/10``, or the length of
    a whole-file answer), or None when it does not say."""
    if status in (206, 416):
        total = (content_range or "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    if status == 200 and content_length is not None and content_length.isdigit():
        return int(content_length)
    return None


def progress_mark(have: int, length: int, step: int) -> int:
    """The progress to report: the last whole ``step`` percent reached, never 100 (that is
    ``downloaded``)."""
    pct = min(99, have * 100 // max(1, length))
    return pct // step * step


def retry_delay_s(attempt: int, base_s: float, cap_s: float) -> float:
    return float(min(cap_s, base_s * 2 ** min(attempt, 30)))


def download_verdict(length: int, sha256: str, got_length: int, got_sha256: str) -> str | None:
    """Why the downloaded bytes are not the signed image, or None when they are."""
    if got_length != length:
        return f"length-mismatch: {got_length} bytes, the signed metadata says {length}"
    if got_sha256 != sha256:
        return "hash-mismatch: the bytes are not the signed image"
    return None


# fault injection ----------------------------------------------------------------------------


class OtaFaults(msgspec.Struct, frozen=True):
    """The simulator's failing boots: a car of group ``fail_group`` (None: of any group) fails
    to boot a new image when a hash of (vin, campaign, seed) falls under ``fail_rate``. The same
    car fails the same campaign every time: a deterministic run to compare platforms with."""

    fail_group: int | None = None
    fail_rate: float = 0.0
    seed: int = 0

    def boot_fails(self, vin: str, campaign_id: str, group: int | None) -> bool:
        if self.fail_rate <= 0:
            return False
        if self.fail_group is not None and group != self.fail_group:
            return False
        digest = hashlib.sha256(f"{self.seed}/{vin}/{campaign_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.fail_rate
