"""Stored energy keeps a value at the outage's end: PV in the last hours is not curtailed."""

from __future__ import annotations

from ems.bcp import plan_bcp
from ems.bcp.problem import StationaryBatterySpec
from tests.bcp_fixtures import problem, shelter


def test_pv_in_the_last_hours_goes_into_an_empty_battery():
    # 1 kW of load under 3 kW of PV for 6 h, a battery at its minimum with 20 kWh of room: every
    # hour 2 kWh of surplus can be stored (x 0.9), so it ends with 2 + 6 x 2 x 0.9 = 12.8 kWh.
    battery = StationaryBatterySpec(
        id="b",
        shelter_id="s",
        soc_min_kwh=2.0,
        soc_max_kwh=22.0,
        initial_soc_kwh=2.0,
        charge_max_kw=10.0,
        discharge_max_kw=10.0,
        charge_efficiency=0.9,
        discharge_efficiency=0.9,
    )
    case = problem([shelter("s", 1.0, 6, points=0, pv_kw=3.0)], batteries=[battery], steps=6)
    plan = plan_bcp(case)
    assert plan.shelter_hours()["s"] == 6.0
    assert abs(plan.battery_soc_kwh["b"].iloc[-1] - 12.8) < 1e-6
    assert (plan.pv_kw["s"] > 3.0 - 1e-6).all()  # nothing curtailed
