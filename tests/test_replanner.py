"""The re-planner: a re-plan that updates the loaded model gives the plan a cold solve gives."""

from __future__ import annotations

import dataclasses

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from ems.optimise import solve
from ems.optimise.model import build_model
from ems.optimise.replanner import Replanner, _load, _update, structure_key
from tests.optimise_fixtures import battery, grid_spec, load, problem, pv, reference_problem


def varied(base, seed: int):
    """``base`` with new prices, forecasts, initial energy and plug-in windows (shifted by 1-3
    steps, as a re-plan a little later sees them), and the departure targets moved with them."""
    rng = np.random.default_rng(seed)
    steps = base.grid.steps
    grids = tuple(
        dataclasses.replace(g, import_price_yen_per_kwh=g.import_price_yen_per_kwh * rng.uniform(0.8, 1.2, steps))
        for g in base.grids
    )
    pvs = tuple(dataclasses.replace(p, available_kw=p.available_kw * rng.uniform(0.5, 1.1)) for p in base.pvs)
    loads = tuple(dataclasses.replace(ld, demand_kw=ld.demand_kw * rng.uniform(0.9, 1.1, steps)) for ld in base.loads)
    batteries = tuple(
        dataclasses.replace(b, initial_soc_kwh=float(rng.uniform(b.soc_min_kwh, b.soc_max_kwh))) for b in base.batteries
    )
    evs = []
    for ev in base.evs:
        k = int(rng.integers(1, 4))

        def shift(values, k=k):
            return np.roll(np.asarray(values, dtype=object if isinstance(values, tuple) else float), k)

        evs.append(
            dataclasses.replace(
                ev,
                initial_soc_kwh=float(rng.uniform(ev.soc_min_kwh, ev.soc_max_kwh)),
                charger_site=tuple(shift(ev.charger_site)),
                charger_id=tuple(shift(ev.charger_id)),
                charge_max_kw=shift(ev.charge_max_kw),
                discharge_max_kw=shift(ev.discharge_max_kw),
                drive_kwh=shift(ev.drive_kwh),
                departure_targets=tuple((min(t + k, steps), energy) for t, energy in ev.departure_targets),
            )
        )
    return dataclasses.replace(base, grids=grids, pvs=pvs, loads=loads, batteries=batteries, evs=tuple(evs))


def lp_arrays(highs: highspy.Highs) -> dict:
    lp = highs.getLp()
    a = lp.a_matrix_
    kind = sp.csc_array if a.format_ == highspy.MatrixFormat.kColwise else sp.csr_array
    matrix = kind((a.value_, a.index_, a.start_), shape=(lp.num_row_, lp.num_col_)).tocsc()
    matrix.eliminate_zeros()
    return {
        "cost": np.array(lp.col_cost_),
        "col_lower": np.array(lp.col_lower_),
        "col_upper": np.array(lp.col_upper_),
        "row_lower": np.array(lp.row_lower_),
        "row_upper": np.array(lp.row_upper_),
        "offset": lp.offset_,
        "integrality": list(lp.integrality_),
        "matrix": matrix,
    }


@pytest.fixture(scope="module")
def reference():
    return reference_problem()


def test_updated_model_is_the_model_a_fresh_build_loads(reference):
    """Every cost, bound, row bound and coefficient written by an update equals what building
    the new problem from scratch gives, column for column and row for row."""
    changed = varied(reference, 1)
    assert structure_key(changed) == structure_key(reference)
    updated = _load("k", build_model(reference))
    _update(updated, changed)
    fresh = _load("k", build_model(changed))
    got, want = lp_arrays(updated.highs), lp_arrays(fresh.highs)
    for name in ("cost", "col_lower", "col_upper", "row_lower", "row_upper"):
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-9, err_msg=name)
    assert got["offset"] == pytest.approx(want["offset"], abs=1e-6)
    assert got["integrality"] == want["integrality"]
    assert abs(got["matrix"] - want["matrix"]).max() < 1e-12
    # and the data did change: the update is not a no-op
    assert not np.allclose(lp_arrays(_load("k", build_model(reference)).highs)["row_lower"], want["row_lower"])


def test_replans_equal_cold_solves_and_reuse_the_model(reference):
    replanner = Replanner()
    first = replanner.solve(reference)
    assert first.status == "optimal" and first.report.model_reused is False
    for seed in (2, 3, 4):
        changed = varied(reference, seed)
        replanned, cold = replanner.solve(changed), solve(changed)
        assert replanned.status == cold.status == "optimal"
        assert replanned.report.model_reused is True
        gap = max(changed.settings.mip_gap, 1e-6) * max(abs(cold.objective_yen), 1.0)
        assert replanned.objective_yen == pytest.approx(cold.objective_yen, abs=gap)
        assert replanned.report.solver_objective_yen == pytest.approx(replanned.objective_yen, rel=1e-6, abs=1e-3)
        assert replanned.report.simultaneous_charge_discharge_kw < 1e-6
        assert replanned.report.simultaneous_import_export_kw < 1e-6
        # the plan is about the new problem: its initial energy and its plug-in windows
        assert list(replanned.power_kw.columns) == list(cold.power_kw.columns)
        for ev in changed.evs:
            away = np.array([site is None for site in ev.charger_site])
            assert np.all(np.abs(replanned.power_kw[ev.id].to_numpy()[away]) < 1e-6), ev.id
    assert (replanner.builds, replanner.updates) == (1, 3)


def test_a_structure_change_builds_the_model_again(reference):
    replanner = Replanner()
    replanner.solve(reference)
    # negative midday prices give the storage binaries: another shape of model
    grids = tuple(
        dataclasses.replace(
            g,
            import_price_yen_per_kwh=np.where(
                np.arange(reference.grid.steps) % 48 < 4, -2.0, g.import_price_yen_per_kwh
            ),
        )
        for g in reference.grids
    )
    negative = dataclasses.replace(reference, grids=grids)
    assert structure_key(negative) != structure_key(reference)
    replanned, cold = replanner.solve(negative), solve(negative)
    assert replanned.report.model_reused is False and replanner.builds == 2
    assert replanned.report.binary_count == cold.report.binary_count > 0
    assert replanned.objective_yen == pytest.approx(
        cold.objective_yen, abs=negative.settings.mip_gap * abs(cold.objective_yen)
    )
    # one asset fewer, or a shorter horizon: built again too
    fewer = dataclasses.replace(reference, batteries=reference.batteries[1:])
    assert replanner.solve(fewer).report.model_reused is False
    assert replanner.builds == 3
    # back to the first shape with new numbers: updated, not built
    assert replanner.solve(varied(fewer, 5)).report.model_reused is True


def test_a_fit_like_price_sells_only_the_surplus():
    """Export paid 20 yen/kWh, import 10: the site sells what its PV gives beyond the load, and
    never buys to sell (the binary, its tight limits and the cuts let nothing else through)."""
    steps = 4
    p = problem(
        steps,
        [grid_spec(steps, 10.0, export_price=20.0, import_limit_kw=50.0, export_limit_kw=50.0)],
        pvs=(pv(steps, [0.0, 10.0, 10.0, 3.0]),),
        loads=(load(steps, 4.0),),
    )
    for schedule in (solve(p), Replanner().solve(p)):
        assert schedule.status == "optimal"
        np.testing.assert_allclose(schedule.power_kw["site_grid"].to_numpy(), [4.0, -6.0, -6.0, 1.0], atol=1e-6)
        assert schedule.objective_terms["energy_cost_yen"] == pytest.approx(4 * 10 + 1 * 10 - 12 * 20, abs=1e-6)


def test_fit_like_with_a_battery_keeps_the_grid_one_way():
    steps = 6
    p = problem(
        steps,
        [
            grid_spec(
                steps,
                [10.0, 10.0, 30.0, 30.0, 10.0, 10.0],
                export_price=20.0,
                import_limit_kw=50.0,
                export_limit_kw=50.0,
            )
        ],
        pvs=(pv(steps, [0.0, 8.0, 8.0, 0.0, 8.0, 0.0]),),
        loads=(load(steps, 3.0),),
        batteries=(battery(capacity_kwh=10.0, power_kw=5.0, efficiency=0.95, initial_kwh=5.0),),
    )
    replanner = Replanner()
    for schedule in (replanner.solve(p), solve(p)):
        assert schedule.report.simultaneous_import_export_kw < 1e-6
        assert schedule.report.simultaneous_charge_discharge_kw < 1e-6
        # the grid never carries more than the site draws or gives
        grid = schedule.power_kw["site_grid"].to_numpy()
        assert np.all(grid <= 3.0 + 5.0 + 1e-6) and np.all(-grid <= 8.0 + 5.0 + 1e-6)


def test_a_rolling_day_is_replanned_on_one_model():
    """Plans of the reference portfolio a step apart (prices, profiles, windows and departures
    move on, some departures leave the horizon, the energy is the previous plan's): every
    re-plan updates the one model and equals the cold solve of the same problem."""
    from benchmarks.bench_replan import reference_sequence, with_state

    replanner, previous = Replanner(), None
    for planned in reference_sequence(4):
        step = with_state(planned, previous)
        replanned, cold = replanner.solve(step), solve(step)
        assert replanned.status == cold.status == "optimal"
        assert replanned.objective_yen == pytest.approx(
            cold.objective_yen, abs=step.settings.mip_gap * abs(cold.objective_yen)
        )
        previous = replanned
    assert (replanner.builds, replanner.updates) == (1, 3)


def test_a_fit_like_replan_starts_from_the_previous_plan_and_equals_the_cold_plan():
    """With a FIT-like price the binaries move with the horizon, so the model is built again, and
    HiGHS starts from the previous plan moved one step: the plan is still the cold plan's."""
    from benchmarks.bench_replan import reference_sequence, with_state
    from benchmarks.fit_case import fit_like

    first, second = (fit_like(p) for p in reference_sequence(2))
    replanner = Replanner()
    second = with_state(second, replanner.solve(first))
    replanned, cold = replanner.solve(second), solve(second)
    assert replanned.status == cold.status == "optimal"
    assert replanned.report.binary_count == cold.report.binary_count > 0
    tolerance = 2 * second.settings.mip_gap * abs(cold.objective_yen)
    assert replanned.objective_yen == pytest.approx(cold.objective_yen, abs=tolerance)
    assert replanned.report.simultaneous_import_export_kw < 1e-6
