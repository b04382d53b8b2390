"""A re-plan request recorded in the store (by the console in another process) moves the
scheduler's re-plan job to now, once; a request older than the scheduler is not acted on."""

from __future__ import annotations

import asyncio
import datetime as dt

from drivers.sim.clock import ScaledClock
from ems.config import load_portfolio
from ems.store import Store
from ems.store.requests import request_replan

START = dt.datetime(2026, 4, 15, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


class ClockOnly:
    """The scheduler needs a controller's clock and portfolio here; no job touches the controller."""

    clock = staticmethod(ScaledClock(START, 1.0).now)
    portfolio = load_portfolio("config/arao.toml")


def test_a_request_made_before_the_scheduler_started_is_not_acted_on(tmp_path):
    from ems.scheduler import ControlScheduler

    store = Store(tmp_path / "ems.sqlite")
    request_replan(store, "hanako", START)
    scheduler = ControlScheduler(ClockOnly(), ClockOnly.portfolio.control, store)
    assert scheduler.take_replan_request() is False
    assert store.count_events("replan-requested") == 0
    assert request_replan(store, "taro", START) == 2
    assert scheduler.take_replan_request() is True
    assert scheduler.take_replan_request() is False  # once per request
    events = store.latest_events(("replan-requested",), limit=5)
    assert len(events) == 1 and events[0][3]["user"] == "taro" and events[0][3]["id"] == 2


def test_a_request_runs_the_replan_job_now_instead_of_at_its_next_time(tmp_path):
    from ems.scheduler import ControlScheduler

    store = Store(tmp_path / "ems.sqlite")
    scheduler = ControlScheduler(ClockOnly(), ClockOnly.portfolio.control, store)
    runs: list[float] = []

    async def replan():
        runs.append(asyncio.get_running_loop().time())

    async def scenario():
        scheduler._add("replan", replan, 3600)  # next due in an hour after its first run
        scheduler.scheduler.start()
        await asyncio.sleep(0.5)
        first = len(runs)
        await asyncio.sleep(0.5)
        idle = len(runs)
        request_replan(store, "hanako", START)
        scheduler.take_replan_request()
        await asyncio.sleep(0.5)
        await scheduler.shutdown()
        return first, idle, len(runs)

    first, idle, after = asyncio.run(scenario())
    assert first == idle == 1  # the job's first run, then nothing for an hour
    assert after == 2  # the request's run


def test_a_taxi_plugging_in_at_its_shelter_runs_the_replan_job_now(tmp_path):
    """In BCP mode the poll that sees a called taxi plugged in at its shelter moves the re-plan
    job to now, as an operator's request does; with nothing new, the job keeps its time."""
    from ems.scheduler import ControlScheduler

    class ArrivalSeen(ClockOnly):
        arrived = False

        def shelter_arrival_unplanned(self) -> bool:
            return self.arrived

    controller = ArrivalSeen()
    scheduler = ControlScheduler(controller, ClockOnly.portfolio.control, Store(tmp_path / "ems.sqlite"))
    runs: list[float] = []

    async def replan():
        runs.append(asyncio.get_running_loop().time())

    async def scenario():
        scheduler._add("replan", replan, 3600)
        scheduler.scheduler.start()
        await asyncio.sleep(0.5)
        assert scheduler.replan_on_shelter_arrival() is False
        await asyncio.sleep(0.5)
        idle = len(runs)
        controller.arrived = True
        assert scheduler.replan_on_shelter_arrival() is True
        await asyncio.sleep(0.5)
        await scheduler.shutdown()
        return idle, len(runs)

    idle, after = asyncio.run(scenario())
    assert idle == 1 and after == 2
