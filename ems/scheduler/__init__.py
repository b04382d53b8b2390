"""The controller's jobs in one process (APScheduler 3, asyncio): telemetry polling, intraday
re-plans, the day-ahead plan before the market gate, the nightly simulation, forecast refresh,
the store's retention and a watchdog.

A job that fails is recorded (``job_runs`` and a ``job-failed`` event) and runs again at its next
time: a fault in one job never ends the process.

Jobs never overlap themselves (``max_instances=1``); a late job runs once, not once per missed
run (``coalesce``); every run's duration is recorded in the store. Intervals are in simulated
seconds: with a clock running ``speed`` times faster than real time, the scheduler fires
``speed`` times as often. Daily jobs fire when the simulated local time crosses their time of
day, so they work on a fast clock too. Jobs that live above this floor (the nightly simulation)
are handed in as callables by the command line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ems.config.control import ControlSettings
from ems.control.controller import Controller
from ems.store import Store
from ems.store.requests import latest_replan_request

log = logging.getLogger(__name__)

DailyJob = Callable[[dt.date], Awaitable[None]]
MIN_REAL_INTERVAL_S = 0.25  # on a fast clock, no job fires more often than this (real time)


@dataclass
class DailyTrigger:
    """Fires once per local day when the clock passes ``at``."""

    at: dt.time
    zone: ZoneInfo
    last_fired: dt.date | None = None

    def due(self, now: dt.datetime) -> dt.date | None:
        local = now.astimezone(self.zone)
        if local.time() >= self.at and self.last_fired != local.date():
            self.last_fired = local.date()
            return local.date()
        return None


class ControlScheduler:
    def __init__(
        self,
        controller: Controller,
        settings: ControlSettings,
        store: Store,
        speed: float = 1.0,
        day_ahead: DailyJob | None = None,
        nightly: DailyJob | None = None,
        retention_days: float | None = None,
    ):
        self.controller = controller
        self.retention_days = retention_days
        self.settings = settings
        self.store = store
        self.speed = speed
        self.scheduler = AsyncIOScheduler(job_defaults={"max_instances": 1, "coalesce": True})
        zone = ZoneInfo(controller.portfolio.portfolio.timezone)
        self.daily = []
        now = controller.clock().astimezone(zone)
        for name, at, job in (
            ("day-ahead", settings.day_ahead_time, day_ahead),
            ("nightly", settings.nightly_time, nightly),
        ):
            if job is not None:  # a time already past today waits for tomorrow
                self.daily.append((name, DailyTrigger(at, zone, now.date() if now.time() >= at else None), job))
        self.last_run: dict[str, dt.datetime] = {}
        self.durations_s: dict[str, list[float]] = {}
        self.skipped: dict[str, int] = {}  # runs skipped because the previous one was still going
        self.inflight: set[asyncio.Task] = set()
        self.stalled: set[str] = set()
        self.replan_request_id = int(latest_replan_request(store).get("id", 0))  # older requests are not acted on
        self.scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
        # APScheduler warns on every skipped overlap; they are counted in self.skipped instead
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)

    def _skipped(self, event) -> None:
        self.skipped[event.job_id] = self.skipped.get(event.job_id, 0) + 1

    def _interval(self, simulated_s: float) -> float:
        """Real seconds between runs of a job due every ``simulated_s`` simulated seconds."""
        return max(simulated_s / self.speed, MIN_REAL_INTERVAL_S)

    def effective_interval_s(self, simulated_s: float) -> float:
        """Simulated seconds between runs, after the floor on real intervals."""
        return self._interval(simulated_s) * self.speed

    def _add(self, name: str, job: Callable[[], Awaitable[None]], every_simulated_s: float) -> None:
        async def timed() -> None:
            task = cast("asyncio.Task[Any]", asyncio.current_task())  # a job always runs as a task
            self.inflight.add(task)
            started_clock, started = self.controller.clock(), time.perf_counter()
            ok = False
            error = ""
            try:
                await job()
                ok = True
            except Exception as failure:  # contained: recorded, and the job runs again at its next time
                error = f"{type(failure).__name__}: {failure}"
                log.exception("job %s failed", name)
            finally:
                duration = time.perf_counter() - started
                self.durations_s.setdefault(name, []).append(duration)
                self.last_run[name] = self.controller.clock()
                self.inflight.discard(task)
                self._record_run(name, started_clock, duration, ok, error)

        interval = self._interval(every_simulated_s)
        self.scheduler.add_job(
            timed,
            "interval",
            seconds=interval,
            id=name,
            name=name,
            misfire_grace_time=max(1, int(interval * 2)),
            next_run_time=dt.datetime.now(dt.UTC),
        )

    def _record_run(self, name: str, started: dt.datetime, duration_s: float, ok: bool, error: str) -> None:
        try:
            self.store.record_job_run(name, started, duration_s, ok, error)
            if not ok:
                self.store.record_event(
                    self.controller.clock(), "job-failed", f"job {name} failed: {error}", {"job": name, "error": error}
                )
        except Exception:  # the store itself failing must not end the scheduler either; the log keeps it
            log.exception("job %s: could not record its run", name)

    async def _retention(self) -> None:
        days = self.retention_days
        if days is None:
            return
        now = self.controller.clock()
        dropped = await asyncio.to_thread(self.store.drop_before, now - dt.timedelta(days=days))
        if any(dropped.values()):
            text = ", ".join(f"{n} {t}" for t, n in dropped.items() if n)
            self.store.record_event(now, "retention", f"dropped rows older than {days:g} days: {text}", dropped)

    def take_replan_request(self) -> bool:
        """Re-plan now if an operator asked for it since the last check (``ems.store.requests``):
        the re-plan job is moved to now, so it never overlaps a re-plan under way."""
        request = latest_replan_request(self.store)
        if int(request.get("id", 0)) <= self.replan_request_id:
            return False
        self.replan_request_id = int(request["id"])
        self.store.record_event(
            self.controller.clock(), "replan-requested", f"re-plan requested by {request.get('user')}", request
        )
        if self.scheduler.running and self.scheduler.get_job("replan") is not None:
            self.scheduler.modify_job("replan", next_run_time=dt.datetime.now(dt.UTC))
        return True

    def replan_on_shelter_arrival(self) -> bool:
        """In BCP mode, a taxi called to a shelter that has just plugged in there is planned at
        once: the re-plan job is moved to now (as for an operator's request), so the shelter is fed
        from its arrival, not from the next periodic re-plan."""
        if not self.controller.shelter_arrival_unplanned():
            return False
        if self.scheduler.running and self.scheduler.get_job("replan") is not None:
            self.scheduler.modify_job("replan", next_run_time=dt.datetime.now(dt.UTC))
        return True

    async def _poll(self) -> None:
        self.take_replan_request()
        await self.controller.poll()
        self.replan_on_shelter_arrival()
        await self.controller.apply()  # between plans, set-points follow the current plan's step

    async def _replan(self) -> None:
        await self.controller.replan()
        await self.controller.apply()

    async def _daily(self) -> None:
        now = self.controller.clock()
        for name, trigger, job in self.daily:
            day = trigger.due(now)
            if day is not None:
                self.store.record_event(now, name, f"{name} job for {day} started")
                await job(day)

    async def _watchdog(self) -> None:
        now = self.controller.clock()
        for name, every_s in (("poll", self.settings.poll_s), ("replan", self.settings.replan_minutes * 60)):
            last = self.last_run.get(name)
            slowest_s = max(self.durations_s.get(name, [0.0])[-5:]) * self.speed
            late = last is not None and (now - last).total_seconds() > 3 * max(
                self.effective_interval_s(every_s), slowest_s
            )
            if late and last is not None and name not in self.stalled:
                self.stalled.add(name)
                self.store.record_event(
                    now, "watchdog", f"{name} last ran {last.isoformat()}, more than 3 intervals ago"
                )
                log.warning("watchdog: %s stalled since %s", name, last)
            elif not late and name in self.stalled:
                self.stalled.discard(name)
                self.store.record_event(now, "watchdog", f"{name} runs again")

    def start(self) -> None:
        s = self.settings
        self._add("poll", self._poll, s.poll_s)
        self._add("replan", self._replan, s.replan_minutes * 60)
        self._add("forecast", self.controller.refresh_history, s.forecast_refresh_minutes * 60)
        self._add("daily", self._daily, 60)
        self._add("watchdog", self._watchdog, s.watchdog_s)
        self._add("retention", self._retention, 3600)
        self.scheduler.start()

    async def shutdown(self) -> None:
        """Stop scheduling and let the jobs under way finish (a solve is not cut off mid-write)."""
        self.scheduler.pause()  # APScheduler's shutdown cancels running coroutine jobs: let them end first
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)
        self.scheduler.shutdown(wait=False)
