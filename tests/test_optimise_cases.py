"""Tiny cases whose optimum is known by hand, solved for real by HiGHS."""

from __future__ import annotations

import numpy as np
import pytest

from ems.optimise import solve
from ems.optimise.model import storage_binary_steps
from tests.optimise_fixtures import battery, ev, grid_spec, load, problem, pv


def test_two_price_arbitrage_matches_the_hand_optimum():
    # 1-h steps, 5 kW load, cheap (10 yen) then dear (30 yen); battery 10 kWh / 5 kW, 90 % each way.
    # By hand: charge 5 kW in both cheap hours (9 kWh stored), discharge 5 kW in hour 3
    # (5.556 kWh out), the remaining 3.444 kWh give 3.1 kW in hour 4.
    # Cost = 10*10 + 10*10 + 0 + (5 - 3.1)*30 = 257 yen; without the battery 400 yen.
    p = problem(4, [grid_spec(4, [10, 10, 30, 30])], loads=(load(4, 5.0),), batteries=(battery(),))
    schedule = solve(p)
    assert schedule.status == "optimal"
    assert schedule.cost_yen == pytest.approx(257.0, abs=1e-3)
    assert schedule.power_kw["bess"].to_numpy() == pytest.approx([-5.0, -5.0, 5.0, 3.1], abs=1e-4)
    assert schedule.soc_kwh["bess"].to_numpy() == pytest.approx([4.5, 9.0, 9.0 - 5 / 0.9, 0.0], abs=1e-4)


def test_no_arbitrage_when_the_spread_does_not_cover_losses():
    # 0.9 * 0.9 = 0.81 round trip: buying at 10 to sell back 0.81 kWh worth 12 loses money.
    p = problem(4, [grid_spec(4, [10, 10, 12, 12])], loads=(load(4, 5.0),), batteries=(battery(),))
    schedule = solve(p)
    assert np.abs(schedule.power_kw["bess"].to_numpy()).max() == pytest.approx(0.0, abs=1e-6)
    assert schedule.cost_yen == pytest.approx(10 * 5 * 2 + 12 * 5 * 2, abs=1e-6)


def test_export_limit_curtails_pv_and_import_limit_is_kept():
    # 30 kW of PV and 5 kW of load for two hours, export limited to 10 kW; then 12 kW of load
    # with imports limited to 8 kW. By hand: export 10 kW, store 5 kWh in the lossless 5 kW
    # battery (all it can give back in the last hour), curtail 60 - 10 - 20 - 5 = 25 kWh,
    # and import 12 - 5 = 7 kW at the end.
    grids = [grid_spec(3, 20.0, export_price=5.0, import_limit_kw=8.0, export_limit_kw=10.0)]
    p = problem(
        3,
        grids,
        loads=(load(3, [5.0, 5.0, 12.0]),),
        pvs=(pv(3, [30.0, 30.0, 0.0]),),
        batteries=(battery(power_kw=5.0, capacity_kwh=10.0, efficiency=1.0),),
    )
    schedule = solve(p)
    grid = schedule.power_kw["site_grid"].to_numpy()
    assert grid == pytest.approx([-10.0, -10.0, 7.0], abs=1e-6)
    assert schedule.report.pv_curtailed_kwh == pytest.approx(25.0, abs=1e-6)
    assert schedule.power_kw["bess"].iloc[2] == pytest.approx(5.0, abs=1e-6)


def test_v2g_only_where_vehicle_and_charger_allow_it():
    # Evening price 40 yen, night 10 yen: a V2G vehicle discharges in the evening.
    prices = [40.0, 40.0, 10.0, 10.0]
    targets = ((4, 10.0),)
    allowed = problem(4, [grid_spec(4, prices)], loads=(load(4, 6.0),), evs=(ev(4, [1, 1, 1, 1], targets=targets),))
    assert solve(allowed).power_kw["taxi"].to_numpy()[:2].max() > 1.0
    charge_only = problem(
        4, [grid_spec(4, prices)], loads=(load(4, 6.0),), evs=(ev(4, [1, 1, 1, 1], discharge_kw=0.0, targets=targets),)
    )
    assert solve(charge_only).power_kw["taxi"].to_numpy().max() <= 1e-9


def test_v2g_refused_for_reference_vehicles_that_do_not_allow_it(reference_schedule):
    problem_, schedule = reference_schedule
    for vehicle in ("taxi-11", "taxi-12"):
        assert schedule.power_kw[vehicle].max() <= 1e-9
    assert max(schedule.power_kw[v.id].max() for v in problem_.evs) > 0.1  # others do discharge


def test_departure_target_met_when_feasible():
    # Plugged 3 h at 6 kW with 100 % efficiency from 10 kWh: reaching 25 kWh at step 3 is feasible.
    p = problem(
        4,
        [grid_spec(4, [30, 10, 10, 10])],
        loads=(load(4, 1.0),),
        evs=(ev(4, [1, 1, 1, 0], targets=((3, 25.0),), discharge_kw=0.0),),
    )
    schedule = solve(p)
    assert schedule.report.ev_target_shortfall_kwh == pytest.approx(0.0, abs=1e-6)
    assert schedule.soc_kwh["taxi"].iloc[2] >= 25.0 - 1e-6


def test_departure_shortfall_reported_when_infeasible():
    # From 10 kWh, at most 3 * 6 = 18 kWh can be added: a 40 kWh target misses by 12 kWh.
    p = problem(
        4,
        [grid_spec(4, 10.0)],
        loads=(load(4, 1.0),),
        evs=(ev(4, [1, 1, 1, 0], targets=((3, 40.0),), capacity_kwh=50.0, discharge_kw=0.0),),
    )
    schedule = solve(p)
    assert schedule.status == "optimal"
    assert schedule.report.ev_target_shortfall_kwh == pytest.approx(12.0, abs=1e-6)


def test_driving_consumes_energy_between_windows():
    p = problem(
        4,
        [grid_spec(4, 10.0)],
        loads=(load(4, 1.0),),
        evs=(ev(4, [1, 0, 0, 1], initial_kwh=20.0, drive_kwh=[0, 4.0, 4.0, 0], discharge_kw=0.0, charge_kw=0.0),),
    )
    soc = solve(p).soc_kwh["taxi"].to_numpy()
    assert soc == pytest.approx([20.0, 16.0, 12.0, 12.0], abs=1e-6)


def test_demand_charge_shaves_a_new_peak():
    # 60 kW load for one hour, contract demand 50 kW: the battery covers the 10 kW above it.
    grids = [grid_spec(3, 10.0, contract_demand_kw=50.0, demand_charge=1000.0)]
    p = problem(
        3,
        grids,
        loads=(load(3, [40.0, 40.0, 60.0]),),
        batteries=(battery(capacity_kwh=20, power_kw=10, initial_kwh=0.0),),
    )
    schedule = solve(p)
    assert schedule.power_kw["site_grid"].max() == pytest.approx(50.0, abs=1e-6)
    assert schedule.objective_terms["demand_charge_yen"] == pytest.approx(0.0, abs=1e-6)


def test_binaries_only_where_simultaneous_flow_could_pay():
    prices = np.array([10.0, -5.0, 0.0, 20.0])
    p = problem(4, [grid_spec(4, prices, carbon_price=0.0)], loads=(load(4, 2.0),), batteries=(battery(),))
    assert storage_binary_steps(p).tolist() == [False, True, True, False]


def test_negative_prices_never_charge_and_discharge_at_once():
    # At -5 yen, burning energy in losses would pay: binaries there keep the flows exclusive.
    prices = np.array([10.0, -5.0, -5.0, 30.0])
    p = problem(
        4,
        [grid_spec(4, prices)],
        loads=(load(4, 2.0),),
        batteries=(battery(initial_kwh=5.0),),
        evs=(ev(4, [1, 1, 1, 1]),),
    )
    schedule = solve(p)
    assert schedule.report.simultaneous_charge_discharge_kw == pytest.approx(0.0, abs=1e-7)
    assert schedule.report.binary_count > 0
