"""The flexibility helper on a case worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ems.optimise import BatterySpec, GridSpec, LoadSpec, Problem, SolverSettings, TimeGrid, solve
from ems.optimise.flexibility import solve_flexibility

START = pd.Timestamp("2026-04-15 00:00", tz="Asia/Tokyo")


def problem(steps: int = 4, export_limit_kw: float = 0.0) -> Problem:
    """A 20 kW load, a 10 kW / 20 kWh battery half full, flat 20 yen/kWh, stored energy worth
    20 yen/kWh: the plan leaves the battery idle."""
    price = np.full(steps, 20.0)
    return Problem(
        grid=TimeGrid(start=START, step_minutes=30, steps=steps),
        sites=("site",),
        grids=(GridSpec("site_grid", "site", 100.0, export_limit_kw, True, price, np.zeros(steps), np.zeros(steps)),),
        loads=(LoadSpec("load", "site", np.full(steps, 20.0)),),
        batteries=(
            BatterySpec(
                "bess",
                "site",
                capacity_kwh=20.0,
                soc_min_kwh=0.0,
                soc_max_kwh=20.0,
                charge_max_kw=10.0,
                discharge_max_kw=10.0,
                charge_efficiency=0.95,
                discharge_efficiency=0.95,
                initial_soc_kwh=10.0,
            ),
        ),
        settings=SolverSettings(terminal_value_yen_per_kwh=20.0),
    )


def test_a_slot_can_shed_and_absorb_the_battery_rating():
    p = problem()
    plan = solve(p)
    reference = plan.power_kw["site_grid"].to_numpy()
    assert reference == pytest.approx(np.full(4, 20.0), abs=1e-6)
    down = solve_flexibility(p, [1], "down", reference)
    up = solve_flexibility(p, [1], "up", reference)
    assert down.flex_kw == pytest.approx(10.0, abs=1e-6)
    assert up.flex_kw == pytest.approx(10.0, abs=1e-6)
    # Shedding 10 kW for 0.5 h takes 5/0.95 kWh out of store (worth 20 yen/kWh) and saves 5 kWh
    # of import at 20 yen/kWh, plus the 0.001 yen/kWh throughput tie-breaker: 20 * 5 / 0.95 - 100 + 0.005 yen.
    assert down.objective_yen - plan.objective_yen == pytest.approx(20 * 5 / 0.95 - 100 + 0.005, abs=1e-6)


def test_a_block_is_limited_by_stored_energy():
    p = problem(steps=8)
    reference = solve(p).power_kw["site_grid"].to_numpy()
    # Four slots (2 h) from the first step, so no charging before: 10 kWh at 95 % over 2 h = 4.75 kW.
    down = solve_flexibility(p, [0, 1, 2, 3], "down", reference)
    assert down.flex_kw == pytest.approx(4.75, abs=1e-6)
    assert np.all(down.net_import_kw[:4] <= reference[:4] - 4.75 + 1e-6)
    # Starting two slots later, the battery can fill up first (2 slots at 10 kW: +9.5 kWh).
    later = solve_flexibility(p, [2, 3, 4, 5], "down", reference)
    assert later.flex_kw == pytest.approx(19.5 * 0.95 / 2, abs=1e-6)
