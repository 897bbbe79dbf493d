"""The car's OTA decisions, without I/O: orders, cancels, slots, resuming, failing boots."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetlink.contracts.campaigns import sha256_of
from fleetlink.vehicle.flash import DOWNLOAD_FILE, Flash
from fleetlink.vehicle.ota_rules import (
    Cancel,
    FlashJob,
    Order,
    OtaFaults,
    ParkWatch,
    Reply,
    announced_length,
    begin_install,
    cancel_decision,
    download_verdict,
    finish_boot,
    fresh_record,
    order_decision,
    progress_mark,
    recover,
    reply_kind,
    resume_offset,
)
from tests.unit.vehicle.ota_support import IMAGE, VIN, update


def test_an_order_starts_keeps_replaces_or_finds_the_car_busy() -> None:
    record = fresh_record("2026.40")
    assert order_decision(record, update("2026.40")) is Order.NOTHING_TO_DO
    assert order_decision(record, update()) is Order.START
    record.job = FlashJob(update())
    assert order_decision(record, update()) is Order.KEEP  # a retry of the same order
    other = update("2026.42", data=IMAGE[::-1], campaign_id="summer-release")
    assert order_decision(record, other) is Order.REPLACE
    begin_install(record)
    assert order_decision(record, other) is Order.BUSY
    assert order_decision(record, update()) is Order.KEEP


def test_a_cancel_drops_a_job_unless_it_is_installing() -> None:
    record = fresh_record("2026.40")
    assert cancel_decision(record, "spring-release") is Cancel.NO_JOB
    record.job = FlashJob(update())
    assert cancel_decision(record, "other-campaign") is Cancel.NO_JOB
    assert cancel_decision(record, "spring-release") is Cancel.DROP
    begin_install(record)
    assert cancel_decision(record, "spring-release") is Cancel.REFUSE


def test_a_boot_that_fails_falls_back_to_the_old_slot() -> None:
    record = fresh_record("2026.40")
    record.job = FlashJob(update())
    assert begin_install(record) == "b"
    assert (record.trying, record.slots) == ("b", {"a": "2026.40", "b": "2026.41"})
    finish_boot(record, booted=False)
    assert (record.active, record.installed, record.trying, record.job) == (
        "a",
        "2026.40",
        None,
        None,
    )
    assert record.slots == {"a": "2026.40"}  # what never ran is not kept as a version
    record.job = FlashJob(update())
    begin_install(record)
    finish_boot(record, booted=True)
    assert (record.active, record.installed, record.trying) == ("b", "2026.41", None)
    record.job = FlashJob(update("2026.42"))
    assert begin_install(record) == "a"  # the slots take turns


def test_power_on_after_a_power_loss_mid_install_boots_the_old_slot() -> None:
    record = fresh_record("2026.40")
    assert recover(record) == (None, None)
    record.job = job = FlashJob(update())
    begin_install(record)
    assert recover(record) == (job, "power-lost: fell back to slot a")
    assert (record.active, record.installed, record.trying, record.job) == (
        "a",
        "2026.40",
        None,
        None,
    )


def test_a_download_resumes_after_what_is_kept() -> None:
    assert resume_offset(0, 100) == 0
    assert resume_offset(40, 100) == 40
    assert resume_offset(100, 100) == 100
    assert resume_offset(101, 100) == 0  # more than the image: not a prefix of it


@pytest.mark.parametrize(
    ("status", "offset", "content_range", "kind"),
    [
        (200, 0, None, Reply.APPEND),
        (206, 40, "bytes 40-99/100", Reply.APPEND),
        (200, 40, None, Reply.RESTART),  # the server ignored the range: the whole image
        (206, 40, "bytes 0-99/100", Reply.RESTART),
        (416, 100, "bytes */100", Reply.COMPLETE),
        (416, 40, "bytes */30", Reply.RESTART),
        (503, 40, None, Reply.RETRY),
        (429, 40, None, Reply.RETRY),
        (403, 40, None, Reply.FAIL),
        (404, 0, None, Reply.FAIL),
    ],
)
def test_what_an_answer_to_a_range_request_means(
    status: int, offset: int, content_range: str | None, kind: Reply
) -> None:
    assert reply_kind(status, offset, 100, content_range) is kind


def test_the_size_the_server_announces() -> None:
    assert announced_length(206, "bytes 40-99/100", "60") == 100
    assert announced_length(416, "bytes */100", None) == 100
    assert announced_length(200, None, "100") == 100
    assert announced_length(200, None, None) is None
    assert announced_length(503, None, "12") is None


def test_progress_is_reported_in_steps_and_never_as_done() -> None:
    marks = {progress_mark(have, 1000, 25) for have in range(0, 1001, 7)}
    assert marks == {0, 25, 50, 75}


def test_only_the_signed_bytes_pass() -> None:
    good = sha256_of(IMAGE)
    assert download_verdict(len(IMAGE), good, len(IMAGE), good) is None
    tampered = sha256_of(IMAGE[:-1] + b"\x00")
    assert (download_verdict(len(IMAGE), good, len(IMAGE), tampered) or "").startswith(
        "hash-mismatch"
    )
    assert (download_verdict(len(IMAGE), good, len(IMAGE) + 1, good) or "").startswith(
        "length-mismatch"
    )


def test_a_car_is_parked_after_standing_still_long_enough() -> None:
    watch = ParkWatch(2.0)
    assert not watch.parked(0.0, 10.0)
    assert not watch.parked(0.2, 11.0)
    assert not watch.parked(8.0, 11.5)  # a stop at a red light, then on
    assert not watch.parked(0.0, 12.0)
    assert not watch.parked(0.0, 13.9)
    assert watch.parked(0.0, 14.0)


def test_failing_boots_are_deterministic_and_limited_to_their_group() -> None:
    faults = OtaFaults(fail_group=1, fail_rate=0.3, seed=7)
    vins = [f"SMV{i:014d}" for i in range(2000)]
    failing = [vin for vin in vins if faults.boot_fails(vin, "spring-release", 1)]
    assert 0.25 < len(failing) / len(vins) < 0.35
    assert failing == [vin for vin in vins if faults.boot_fails(vin, "spring-release", 1)]
    assert not any(faults.boot_fails(vin, "spring-release", 2) for vin in vins)
    assert not any(faults.boot_fails(vin, "spring-release", None) for vin in vins)
    other_seed = OtaFaults(fail_group=1, fail_rate=0.3, seed=8)
    assert failing != [vin for vin in vins if other_seed.boot_fails(vin, "spring-release", 1)]
    assert not OtaFaults().boot_fails(VIN, "spring-release", 1)
    everywhere = OtaFaults(fail_rate=1.0)
    assert everywhere.boot_fails(VIN, "spring-release", None)


def test_the_flash_keeps_its_record_and_partial_download_over_a_restart(tmp_path: Path) -> None:
    flash = Flash(tmp_path, "2026.40")
    assert flash.record.installed == "2026.40"
    flash.record.job = FlashJob(update())
    flash.append(IMAGE[:3000])
    flash.save()
    assert not list(tmp_path.glob("*.tmp"))  # the record is renamed into place
    again = Flash(tmp_path, "2020.1")  # the firmware the car was built with no longer counts
    assert again.record.installed == "2026.40"
    assert again.record.job is not None
    assert again.record.job.downloaded == 3000
    assert again.size == 3000
    again.append(IMAGE[3000:])
    assert again.digest() == sha256_of(IMAGE)
    again.record.job = None
    again.save()
    assert Flash(tmp_path, "2026.40").size == 0
    assert not (tmp_path / DOWNLOAD_FILE).exists()  # a partial file without a job is dropped


def test_an_unreadable_flash_record_starts_the_car_afresh(tmp_path: Path) -> None:
    (tmp_path / "ota.json").write_bytes(b'{"active": "b", "slots": {"a": "1"}')
    assert Flash(tmp_path, "2026.40").record == fresh_record("2026.40")


def test_in_memory_the_flash_keeps_no_image_bytes() -> None:
    flash = Flash(None, "2026.40")
    flash.record.job = FlashJob(update())
    flash.append(IMAGE)
    flash.save()
    assert (flash.size, flash.digest()) == (len(IMAGE), sha256_of(IMAGE))
    flash.write_slot(begin_install(flash.record))
    assert flash.size == 0
