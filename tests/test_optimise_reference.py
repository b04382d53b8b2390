"""Physics, cost and metamorphic checks on real solves of the reference portfolio and small cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ems.optimise import solve
from ems.optimise.evaluate import storage_soc_kwh
from ems.optimise.model import storage_binary_steps
from tests.optimise_fixtures import battery, ev, grid_spec, load, problem, pv, reference_problem


def test_energy_balances_at_every_site_and_step(reference_schedule):
    p, schedule = reference_schedule
    frame = schedule.long_frame(p)
    residual = frame.groupby(["time", "site"])["power_kw"].sum()
    residual = residual[residual.index.get_level_values("site") != ""]  # EVs away from any site
    assert len(residual) == p.grid.steps * len(p.sites)
    assert np.abs(residual.to_numpy()).max() < 1e-3


def test_soc_follows_the_solved_powers_and_stays_in_bounds(reference_schedule):
    p, schedule = reference_schedule
    dt_h = p.grid.step_h
    for b in p.batteries:
        recomputed, _ = storage_soc_kwh(
            b.initial_soc_kwh, schedule.power_kw[b.id].to_numpy(), dt_h, b.charge_efficiency, b.discharge_efficiency
        )
        assert schedule.soc_kwh[b.id].to_numpy() == pytest.approx(recomputed, abs=1e-4)
        assert schedule.soc_kwh[b.id].min() >= min(b.soc_min_kwh, b.initial_soc_kwh) - 1e-6
        assert schedule.soc_kwh[b.id].max() <= b.soc_max_kwh + 1e-6
    for v in p.evs:
        recomputed, short = storage_soc_kwh(
            v.initial_soc_kwh,
            schedule.power_kw[v.id].to_numpy(),
            dt_h,
            v.charge_efficiency,
            v.discharge_efficiency,
            v.drive_kwh,
            min(v.soc_min_kwh, v.initial_soc_kwh),
        )
        assert schedule.soc_kwh[v.id].to_numpy() == pytest.approx(recomputed, abs=1e-4)
        assert schedule.soc_kwh[v.id].max() <= v.soc_max_kwh + 1e-6


def test_solver_objective_equals_the_independent_recomputation(reference_schedule):
    _p, schedule = reference_schedule
    assert schedule.objective_yen == pytest.approx(schedule.report.solver_objective_yen, rel=1e-6, abs=1e-3)


def test_reference_plan_meets_targets_and_beats_the_rule_based_baseline(reference_schedule):
    from ems.optimise import fallback_schedule

    p, schedule = reference_schedule
    assert schedule.status == "optimal"
    assert schedule.report.ev_target_shortfall_kwh == pytest.approx(0.0, abs=1e-6)
    assert schedule.report.drive_shortfall_kwh == pytest.approx(0.0, abs=1e-6)
    baseline = fallback_schedule(p, "baseline")
    assert schedule.objective_yen < baseline.objective_yen
    assert schedule.cost_yen < baseline.cost_yen


def test_no_simultaneous_flows_in_the_reference_plan(reference_schedule):
    p, schedule = reference_schedule
    assert not storage_binary_steps(p).any()  # positive prices: the LP alone must do it
    assert schedule.report.simultaneous_charge_discharge_kw < 1e-6
    assert schedule.report.simultaneous_import_export_kw < 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_relaxation_never_charges_and_discharges_at_once_where_binaries_were_left_out(seed):
    rng = np.random.default_rng(seed)
    steps = 12
    prices = rng.choice([0.0, 0.01, 5.0, 12.0, 30.0], size=steps)
    export = prices * rng.uniform(0.0, 0.95)
    p = problem(
        steps,
        [grid_spec(steps, prices, export_price=export, export_limit_kw=rng.uniform(0, 10), co2=0.0)],
        loads=(load(steps, rng.uniform(1, 8, steps)),),
        pvs=(pv(steps, rng.uniform(0, 15, steps)),),
        batteries=(battery(initial_kwh=5.0),),
        evs=(ev(steps, rng.integers(0, 2, steps), efficiency=0.92),),
        terminal_value=float(rng.uniform(0, 20)),
    )
    needed = storage_binary_steps(p)
    schedule = solve(p)
    ev_can_discharge = p.evs[0].discharge_max_kw > 0
    grid_exclusive = p.grids[0].export_price_yen_per_kwh >= p.grids[0].effective_import_yen_per_kwh
    expected_binaries = (
        needed.sum()
        + (needed & ev_can_discharge).sum()
        + (grid_exclusive.sum() if p.grids[0].export_limit_kw > 0 else 0)
    )
    assert schedule.report.binary_count == expected_binaries
    assert schedule.report.simultaneous_charge_discharge_kw < 1e-6
    assert schedule.report.simultaneous_import_export_kw < 1e-6


def test_doubling_every_price_doubles_the_cost():
    steps = 6
    prices = np.array([12.0, 8.0, 0.5, 0.5, 25.0, 30.0])
    assets = dict(
        loads=(load(steps, [4, 5, 3, 3, 6, 7]),),
        pvs=(pv(steps, [0, 3, 9, 9, 2, 0]),),
        batteries=(battery(initial_kwh=2.0),),
        evs=(ev(steps, [1, 1, 1, 1, 0, 0], targets=((4, 20.0),)),),
    )
    once = solve(
        problem(
            steps, [grid_spec(steps, prices, export_price=prices * 0.5, export_limit_kw=5)], terminal_value=10, **assets
        )
    )
    twice = solve(
        problem(
            steps, [grid_spec(steps, 2 * prices, export_price=prices, export_limit_kw=5)], terminal_value=20, **assets
        )
    )
    assert twice.cost_yen == pytest.approx(2 * once.cost_yen, rel=1e-6)
    assert twice.objective_yen == pytest.approx(2 * once.objective_yen, rel=1e-6, abs=0.05)


def test_a_larger_battery_never_costs_more():
    steps = 8
    prices = np.array([10, 10, 10, 30, 30, 10, 30, 30], dtype=float)
    objectives = []
    for capacity in (5.0, 10.0, 20.0, 40.0):
        p = problem(
            steps,
            [grid_spec(steps, prices)],
            loads=(load(steps, 5.0),),
            batteries=(battery(capacity_kwh=capacity, power_kw=10.0),),
        )
        objectives.append(solve(p).objective_yen)
    assert all(later <= earlier + 1e-6 for earlier, later in zip(objectives, objectives[1:]))
    assert objectives[-1] < objectives[0]


def test_same_day_at_60_30_and_15_minute_steps_is_consistent():
    costs, load_kwh = [], []
    for step in (60, 30, 15):
        p = reference_problem(step_minutes=step, horizon_hours=24)
        schedule = solve(p)
        assert schedule.status == "optimal"
        costs.append(schedule.cost_yen)
        load_kwh.append(sum(ld.demand_kw.sum() for ld in p.loads) * p.grid.step_h)
    assert load_kwh == pytest.approx([load_kwh[0]] * 3, rel=1e-9)
    # finer steps can only add freedom within a slot, so the cost agrees to within a few percent
    assert max(costs) / min(costs) < 1.05


def test_bcp_reserve_is_kept_and_costs_money():
    prices = np.array([10.0, 30.0, 30.0, 30.0])
    free = problem(4, [grid_spec(4, prices)], loads=(load(4, 5.0),), batteries=(battery(initial_kwh=9.0),))
    reserved = dataclasses.replace(free, batteries=(battery(initial_kwh=9.0, reserve_kwh=6.0),))
    free_plan, reserved_plan = solve(free), solve(reserved)
    assert free_plan.soc_kwh["bess"].min() < 6.0 - 1e-6
    assert reserved_plan.soc_kwh["bess"].min() >= 6.0 - 1e-6
    assert reserved_plan.cost_yen > free_plan.cost_yen
