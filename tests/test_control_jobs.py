"""Set-point holding, the scheduler's job rules, the solver fallback and ``ems run`` itself."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from drivers.sim.clock import ScaledClock
from ems.config import load_portfolio
from ems.control.setpoints import failsafe_setpoint_kw, hold_small_changes, plan_targets
from ems.store import Store
from tests.control_fixtures import START, SteppedRun, fast_twin_portfolio


def test_small_changes_are_held_and_real_ones_go_through():
    previous = {"bess": 20.0, "charger": -6.0, "idle": 0.0}
    targets = {"bess": 20.4, "charger": -3.0, "idle": 0.5, "new": 4.0}
    held = hold_small_changes(previous, targets, threshold_kw=1.0)
    assert held == {"bess": 20.0, "charger": -3.0, "idle": 0.5, "new": 4.0}
    # stopping is never held back
    assert hold_small_changes({"bess": 0.6}, {"bess": 0.0}, 1.0) == {"bess": 0.0}


def test_plan_targets_follow_the_current_step_and_the_plugged_vehicle():
    index = pd.date_range(START, periods=3, freq="30min")
    plan = pd.DataFrame({"bess": [5.0, -5.0, 1.0], "taxi-01": [-6.0, 0.0, 3.0]}, index=index)
    targets = plan_targets(plan, START + dt.timedelta(minutes=40), {"taxi-01": "c1"}, {"bess"}, {"c1", "c2"})
    assert targets == {"bess": -5.0, "c1": 0.0, "c2": 0.0}
    targets = plan_targets(plan, START + dt.timedelta(minutes=61), {"taxi-01": "c2"}, {"bess"}, {"c1", "c2"})
    assert targets == {"bess": 1.0, "c1": 0.0, "c2": 3.0}
    assert plan_targets(plan, START + dt.timedelta(hours=3), {}, {"bess"}, set()) == {"bess": 0.0}


def test_failsafe_defaults():
    portfolio = load_portfolio("config/arao.toml")
    assert failsafe_setpoint_kw(portfolio, "city_hall_bess") == 0.0
    assert failsafe_setpoint_kw(portfolio, "depot_c01") == -3.0  # charge-only at the safe power


def test_a_replan_that_changes_little_does_not_rewrite_setpoints(twin_factory, mosquitto, tmp_path):
    run = SteppedRun(twin_factory, mosquitto, tmp_path / "ems.sqlite")

    async def scenario():
        controller = await run.open_controller()
        await controller.cycle()
        first = run.store.count("setpoints")
        await run.advance(0)  # the devices' telemetry catches up with the set-points just written
        await controller.cycle()  # same time, same state: the new plan is the same or nearly
        return first, run.store.count("setpoints")

    first, second = asyncio.run(scenario())
    assert first > 0
    assert second == first


def test_solver_failure_falls_back_to_rules_and_still_writes(twin_factory, mosquitto, tmp_path):
    # a time limit no solver can meet: HiGHS stops with no plan, the rules take over
    portfolio = fast_twin_portfolio(time_limit_s=1e-9)
    run = SteppedRun(twin_factory, mosquitto, tmp_path / "ems.sqlite", portfolio=portfolio)

    async def scenario():
        controller = await run.open_controller()
        figures = await controller.cycle()
        events = [row[1] for row in list(run.store.rows("events"))[1:]]
        return figures, events, run.store.count("setpoints")

    figures, events, setpoints = asyncio.run(scenario())
    assert figures.plan_status == "fallback"
    assert "fallback" in events
    assert setpoints > 0


def test_scheduler_jobs_never_overlap_and_late_runs_coalesce(tmp_path):
    from ems.scheduler import ControlScheduler

    class SlowController:
        clock = staticmethod(ScaledClock(START, 1.0).now)
        portfolio = load_portfolio("config/arao.toml")

    store = Store(tmp_path / "ems.sqlite")
    scheduler = ControlScheduler(SlowController(), SlowController.portfolio.control, store)
    running, most = 0, 0

    async def slow_job():
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.6)  # longer than its 0.25 s interval
        running -= 1

    async def scenario():
        scheduler._add("slow", slow_job, 0.25)
        scheduler.scheduler.start()
        await asyncio.sleep(2.0)
        await scheduler.shutdown()

    asyncio.run(scenario())
    runs = [row for row in list(store.rows("job_runs"))[1:] if row[0] == "slow"]
    assert most == 1
    assert 2 <= len(runs) <= 4
    assert scheduler.skipped.get("slow", 0) > 0
    assert all(row[2] == pytest.approx(0.6, abs=0.2) and row[3] == 1 for row in runs)


def test_ems_run_with_the_twin_and_a_clean_stop_on_ctrl_c(mosquitto, tmp_path):
    from tests.conftest import free_port_block

    store = tmp_path / "ems.sqlite"
    command = [
        sys.executable,
        "-m",
        "ems",
        "run",
        "--config",
        "config/arao.toml",
        "--twin",
        "--speed",
        "120",
        "--start",
        "2026-04-15T07:00+09:00",
        "--mqtt-host",
        mosquitto.host,
        "--mqtt-port",
        str(mosquitto.port),
        "--modbus-base-port",
        str(free_port_block(40)),
        "--store",
        str(store),
        "--inputs",
        "profiles",
        "--status-every-s",
        "0.5",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"}
    )
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("2026-04-15") and "plan optimal" in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    lines += out.splitlines()
    assert process.returncode == 0, err[-2000:]
    assert any("grid kW city_hall:" in line and "fleet" in line for line in lines)
    assert "stopped: devices left at their failsafe set-points" in out
    db = Store(store)
    events = [row[1] for row in list(db.rows("events"))[1:]]
    assert events[0] == "start" and events[-1] == "shutdown"
    assert db.count("plans") >= 1 and db.count("telemetry") > 0


def test_a_killed_controller_process_resumes_from_its_store(mosquitto, tmp_path):
    from tests.conftest import free_port_block

    store = tmp_path / "ems.sqlite"
    base = [
        sys.executable,
        "-m",
        "ems",
        "run",
        "--config",
        "config/arao.toml",
        "--twin",
        "--speed",
        "120",
        "--mqtt-host",
        mosquitto.host,
        "--mqtt-port",
        str(mosquitto.port),
        "--store",
        str(store),
        "--inputs",
        "profiles",
        "--status-every-s",
        "0.5",
    ]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(
        base + ["--start", "2026-04-15T07:00+09:00", "--modbus-base-port", str(free_port_block(40))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and "plan optimal" not in first.stdout.readline():
        pass
    first.kill()  # no clean shutdown: the store must survive as it is
    first.wait(10)
    killed = Store(store)
    telemetry, plans = killed.count("telemetry"), killed.count("plans")
    killed.close()
    assert telemetry > 0 and plans >= 1
    for _attempt in range(3):  # a port of the free block can be taken by another process before the twin binds it
        second = subprocess.run(
            base
            + [
                "--start",
                "2026-04-15T07:30+09:00",
                "--modbus-base-port",
                str(free_port_block(40)),
                "--duration-hours",
                "0.3",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if "cannot listen" not in second.stderr:
            break
    assert second.returncode == 0, second.stderr[-2000:]
    db = Store(store)
    events = [row[1] for row in list(db.rows("events"))[1:]]
    assert "resume" in events  # the second process picked up the stored plan
    assert db.count("telemetry") > telemetry and db.count("plans") > plans
