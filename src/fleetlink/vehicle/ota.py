"""OTA updates in the car: ``software.update`` and ``software.cancel``, the download, the install
into the inactive slot once parked, and ``software-state`` events for every step.

The commands come through the ``CommandExecutor`` (signature, expiry, at most once); this module
adds their precondition (the Uptane-style checks of ``OtaTrust``) and their actions. An action
only takes or drops the job: the work runs in one background task per job, which a cancel or a
newer order ends while nothing is installed yet. Reports go out after the command's answer
(``call_soon``), so the platform hears that the order was taken before what became of it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from fleetlink.contracts.campaigns import (
    SoftwareCancelParams,
    SoftwareReport,
    SoftwareStep,
    SoftwareUpdateParams,
)
from fleetlink.contracts.models import CommandName, EventKind
from fleetlink.security.images import OtaTrust
from fleetlink.vehicle.commands import Action
from fleetlink.vehicle.flash import Flash
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
    order_decision,
    progress_mark,
    recover,
    reply_kind,
    resume_offset,
    retry_delay_s,
)
from fleetlink.vehicle.state import VehicleState

_log = logging.getLogger(__name__)
_REASON_CHARS = 256  # SoftwareReport.reason's bound


@dataclass(frozen=True)
class OtaConfig:
    """What a car needs for OTA updates.

    ``http``: a client shared by a simulated fleet (None: the car makes its own while it runs);
    ``flash_dir``: where the flash survives a restart (None: in memory, no image bytes kept);
    ``park_wait_s``: how long the car must stand still before it installs; ``install_s``: how
    long writing and the reboot take.
    """

    trust: OtaTrust
    http: httpx.AsyncClient | None = None
    park_wait_s: float = 2.0
    install_s: float = 5.0
    flash_dir: Path | None = None
    faults: OtaFaults = field(default_factory=OtaFaults)
    chunk_bytes: int = 64 * 1024
    retry_s: float = 1.0  # the first wait after a network error or a 5xx; doubles to the cap
    retry_max_s: float = 60.0
    progress_step: int = 25  # percent between ``downloading`` reports


class _JobEndedError(Exception):
    """Ends a job before its install: the step to report and why."""

    def __init__(self, step: SoftwareStep, reason: str) -> None:
        super().__init__(reason)
        self.step, self.reason = step, reason


class OtaUpdater:
    """One car's updates. ``report_event`` sends an event (the agent's), ``on_installed`` runs
    after a new version booted, ``clock`` is the car's clock in epoch ms."""

    def __init__(
        self,
        state: VehicleState,
        config: OtaConfig,
        *,
        report_event: Callable[[EventKind, dict[str, object]], None],
        on_installed: Callable[[], None] = lambda: None,
        clock: Callable[[], int],
        rng: random.Random | None = None,
    ) -> None:
        self.state = state
        self.config = config
        self.flash = Flash(config.flash_dir, state.firmware)
        state.firmware = self.flash.record.installed  # what the flash boots is what runs
        self._report_event, self._on_installed, self._clock = report_event, on_installed, clock
        self._rng = rng or random.Random()
        self._http = config.http
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._reported_pct = -1
        self.steps: Counter[str] = Counter()  # reports sent, by step
        self.actions: dict[CommandName, Action] = {
            CommandName.SOFTWARE_UPDATE: self._take,
            CommandName.SOFTWARE_CANCEL: self._cancel,
        }
        self.preconditions: dict[CommandName, Action] = {CommandName.SOFTWARE_UPDATE: self._refusal}

    # the commands -----------------------------------------------------------------------------

    def _refusal(self, state: VehicleState, params: dict[str, Any]) -> str | None:
        update = msgspec.convert(params, SoftwareUpdateParams)
        reason = self.config.trust.refusal(
            update.image,
            update.order,
            vin=state.vin,
            model=state.model,
            installed=state.firmware,
            now_ms=self._clock(),
        )
        if reason is not None:
            self._say(SoftwareStep.REJECTED, update, reason=reason)
        return reason

    def _take(self, state: VehicleState, params: dict[str, Any]) -> str | None:
        update = msgspec.convert(params, SoftwareUpdateParams)
        record = self.flash.record
        decision = order_decision(record, update)
        if decision is Order.NOTHING_TO_DO:
            self._say(SoftwareStep.SUCCEEDED, update)
            return None
        if decision is Order.BUSY and record.job is not None:
            reason = f"already-installing: {record.job.params.campaign_id}"
            self._say(SoftwareStep.FAILED, update, reason=reason)
            return reason
        if decision is Order.KEEP and record.job is not None:
            if not record.installing:  # a retry brings a fresh token and expiry: use them
                record.job.params = update
                self.flash.save()
            self._start_job()  # a no-op while its task runs
            return None
        if decision is Order.REPLACE:
            self._drop_job(f"replaced by campaign {update.campaign_id}")
        record.job = FlashJob(update)
        self.flash.drop_download()
        self.flash.save()
        self._start_job()
        return None

    def _cancel(self, state: VehicleState, params: dict[str, Any]) -> str | None:
        campaign_id = msgspec.convert(params, SoftwareCancelParams).campaign_id
        decision = cancel_decision(self.flash.record, campaign_id)
        if decision is Cancel.REFUSE:
            return "already-installing"
        if decision is Cancel.DROP:
            self._drop_job("cancelled by the platform")
        return None

    def _drop_job(self, reason: str) -> None:
        """End the job (not installing) and forget its bytes."""
        job = self.flash.record.job
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.flash.record.job = None
        self.flash.drop_download()
        self.flash.save()
        if job is not None:
            self._say(SoftwareStep.CANCELLED, job.params, reason=reason)

    # running ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: recover from a power loss, resume the kept job, run new ones."""
        self._recover()
        own_client = self._http is None
        if own_client:
            self._http = httpx.AsyncClient(timeout=30.0)
        self._running = True
        self._start_job()
        try:
            await stop.wait()
        finally:
            self._running = False
            task, self._task = self._task, None
            if task is not None:  # what it did so far is in flash: the next start goes on
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if own_client and self._http is not None:
                await self._http.aclose()
                self._http = None

    def _recover(self) -> None:
        job, reason = recover(self.flash.record)
        if reason is None:
            return
        self.flash.drop_download()
        self.flash.save()
        self.state.firmware = self.flash.record.installed
        self._say(SoftwareStep.FAILED, None if job is None else job.params, reason=reason)

    def _start_job(self) -> None:
        if not self._running or self.flash.record.job is None:
            return  # a job taken before ``run`` starts with it
        if self._task is None or self._task.done():
            self._reported_pct = -1
            self._task = asyncio.create_task(self._carry_out(), name=f"ota-{self.state.vin}")

    async def _carry_out(self) -> None:
        record = self.flash.record
        job = record.job
        if job is None:
            return
        try:
            if not job.verified:
                await self._download(job)
                job.verified = True
                self.flash.save()
                self._say(SoftwareStep.DOWNLOADED, job.params)
            await self._parked()
            await self._install(job)
        except _JobEndedError as ended:
            self._end(job, ended.step, ended.reason)
        except Exception as error:  # a full disk, a bad URL, a bug: the platform must hear
            _log.exception("%s: update %s failed", self.state.vin, job.params.campaign_id)
            self._end(job, SoftwareStep.FAILED, f"error: {error!r}")

    def _end(self, job: FlashJob, step: SoftwareStep, reason: str) -> None:
        record = self.flash.record
        if record.job is job:
            if record.installing:  # the slot write failed: the old slot still runs
                finish_boot(record, booted=False)
            record.job = None
            self.flash.drop_download()
            self.flash.save()
        self._say(step, job.params, reason=reason)

    # the download -----------------------------------------------------------------------------

    async def _download(self, job: FlashJob) -> None:
        """Until the whole image is in flash (resuming after what is kept), then verified."""
        flash, attempt = self.flash, 0
        if self._clock() >= job.params.order.expires_at:
            raise _JobEndedError(SoftwareStep.FAILED, "order-expired")
        while True:
            update = job.params  # a retry of the order may have renewed the token meanwhile
            length = update.image.length
            offset = resume_offset(flash.size, length)
            if offset != flash.size:
                flash.drop_download()
            self._progress(job)
            if offset == length:
                break
            try:
                reply = await self._fetch(job, offset)
            except httpx.TransportError:  # refused, timed out, cut midway: resume later
                reply = Reply.RETRY
            finally:
                flash.save()  # how far it got, for the record (the file's size is what counts)
            if reply is Reply.COMPLETE or flash.size > length:
                break
            if reply is Reply.APPEND:
                attempt = 0
                continue
            now = self._clock()
            if now >= update.order.expires_at:
                raise _JobEndedError(SoftwareStep.FAILED, "order-expired")
            delay = retry_delay_s(attempt, self.config.retry_s, self.config.retry_max_s)
            attempt += 1
            await asyncio.sleep(
                min(delay * self._rng.uniform(0.5, 1.0), (update.order.expires_at - now) / 1000)
            )
        image = job.params.image
        verdict = download_verdict(image.length, image.sha256, flash.size, flash.digest())
        if verdict is not None:
            raise _JobEndedError(SoftwareStep.REJECTED, verdict)

    async def _fetch(self, job: FlashJob, offset: int) -> Reply:
        """One request from ``offset`` on: APPEND when it brought bytes, else what to do."""
        assert self._http is not None, "run() makes the client"
        update, flash = job.params, self.flash
        # no content coding: ranges and lengths are then those of the image itself
        headers = {"Authorization": f"Bearer {update.token}", "Accept-Encoding": "identity"}
        if offset:  # If-Range: should the server's image differ, it sends all of it (200)
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = f'"{update.image.sha256}"'
        async with self._http.stream("GET", update.url, headers=headers) as response:
            status, length = response.status_code, update.image.length
            content_range = response.headers.get("content-range")
            kind = reply_kind(status, offset, length, content_range)
            if kind is Reply.FAIL:
                raise _JobEndedError(SoftwareStep.FAILED, f"http-{status}")
            served = announced_length(status, content_range, response.headers.get("content-length"))
            if kind is not Reply.RETRY and served is not None and served != length:
                reason = f"length-mismatch: the server has {served} bytes, the image {length}"
                raise _JobEndedError(SoftwareStep.REJECTED, reason)
            if kind is Reply.RESTART:
                flash.drop_download()  # what is kept is not a prefix of what the server has
                if status != 200:
                    return Reply.RETRY  # ask again from byte 0
            elif kind is not Reply.APPEND:
                return kind
            before = flash.size
            async for chunk in response.aiter_bytes(self.config.chunk_bytes):
                flash.append(chunk)
                self._progress(job)
                if flash.size > length:
                    break  # more than signed: no use reading on
            return Reply.APPEND if flash.size > before else Reply.RETRY

    def _progress(self, job: FlashJob) -> None:
        mark = progress_mark(self.flash.size, job.params.image.length, self.config.progress_step)
        if mark > self._reported_pct:
            self._reported_pct = mark
            self._say(SoftwareStep.DOWNLOADING, job.params, progress=mark)

    # the install ------------------------------------------------------------------------------

    async def _parked(self) -> None:
        watch = ParkWatch(self.config.park_wait_s)
        loop = asyncio.get_running_loop()
        poll_s = max(0.02, min(0.5, self.config.park_wait_s / 4))
        while not watch.parked(self.state.speed_kmh, loop.time()):
            await asyncio.sleep(poll_s)

    async def _install(self, job: FlashJob) -> None:
        record, update = self.flash.record, job.params
        slot = begin_install(record)
        self.flash.save()  # "trying" is in flash before a byte of the slot changes
        self._say(SoftwareStep.INSTALLING, update)
        self.flash.write_slot(slot)
        self.flash.save()
        await asyncio.sleep(self.config.install_s)  # writing, then the reboot into ``slot``
        booted = not self.config.faults.boot_fails(self.state.vin, update.campaign_id, update.group)
        finish_boot(record, booted)
        self.flash.save()
        if not booted:
            reason = f"boot-failed: fell back to slot {record.active}"
            self._say(SoftwareStep.FAILED, update, reason=reason)
            return
        self.state.firmware = record.installed
        self._say(SoftwareStep.SUCCEEDED, update)
        self._later(self._on_installed)

    # reports ----------------------------------------------------------------------------------

    def _say(
        self,
        step: SoftwareStep,
        update: SoftwareUpdateParams | None,
        *,
        reason: str | None = None,
        progress: int | None = None,
    ) -> None:
        report = SoftwareReport(
            step=step,
            installed=self.state.firmware,
            campaign_id=None if update is None else update.campaign_id,
            version=None if update is None else update.image.version,
            progress_pct=progress,
            reason=None if reason is None else reason[:_REASON_CHARS],
            slot=self.flash.record.active,
        )
        self.steps[step] += 1
        data: dict[str, object] = msgspec.to_builtins(report)
        self._later(functools.partial(self._report_event, EventKind.SOFTWARE_STATE, data))

    def _later(self, call: Callable[[], None]) -> None:
        """After what runs now: a command's answer goes out before the events it caused."""
        try:
            asyncio.get_running_loop().call_soon(call)
        except RuntimeError:  # no loop (the rules driven by hand): at once
            call()
