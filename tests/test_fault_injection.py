"""Faults injected at random (seeded) times over simulated hours: a charger, a battery and the
broker go away and come back. Every re-plan slot has a plan (or a recorded fallback), no
set-point exceeds a rating, and the energy the controller recorded matches the twin's counters.
The week-long version is in ``make bench`` (benchmarks/bench_control.py)."""

from __future__ import annotations

import asyncio

import pytest

from ems.store import Store
from tests.control_fixtures import SteppedRun, assert_setpoints_within_ratings, fast_twin_portfolio
from tests.fault_injection import draw_faults, fault_run, slots_without_plan

SLOTS = 6  # three simulated hours, 30-minute re-plans
SEED = 7
ENERGY_TOLERANCE_KWH = 0.1  # the SunSpec power register's resolution over the run


def test_faults_at_random_times_never_leave_a_slot_without_a_plan(twin_factory, mosquitto, tmp_path):
    portfolio = fast_twin_portfolio()
    # a device taken away costs its timeout at every read and write: short ones keep the run short
    portfolio = portfolio.model_copy(
        update={"twin": portfolio.twin.model_copy(update={"mqtt_timeout_s": 0.5, "modbus_timeout_s": 0.3})}
    )
    run = SteppedRun(twin_factory, mosquitto, tmp_path / "ems.sqlite", portfolio=portfolio, horizon_hours=8)
    faults = draw_faults(run.served, SLOTS, SEED)
    # the short run squeezes the day's faults into its slots
    for fault in faults:
        fault.first_slot = 1 + fault.first_slot % (SLOTS - 2)
        fault.slots = min(fault.slots, SLOTS - fault.first_slot - 1)
    assert {f.kind for f in faults} == {"charger", "battery", "broker"}

    result = asyncio.run(fault_run(run, mosquitto, SLOTS, faults))
    store = Store(tmp_path / "ems.sqlite")
    uncovered = slots_without_plan(store, result.slots)
    assert uncovered == []
    assert_setpoints_within_ratings(store, run.served)
    kinds = {e[1] for e in list(store.rows("events"))[1:]}
    assert {"device-lost", "device-back"} <= kinds  # the faults really happened and ended
    assert abs(result.twin_net_kwh) > 1.0  # the battery did work
    assert result.recorded_kwh == pytest.approx(result.twin_net_kwh, abs=ENERGY_TOLERANCE_KWH)
