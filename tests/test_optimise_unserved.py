"""Physical limits hold in every schedule: what the grid and storage cannot carry is left
unserved at a price, and the schedule says where, when and which limit binds."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ems.optimise import Problem, Schedule, fallback_schedule, solve
from tests.optimise_fixtures import battery, ev, grid_spec, load, problem, pv

STEPS = 4  # 00:00-04:00 at 60-minute steps


def check_limits(p: Problem, schedule: Schedule) -> None:
    """Every row of the schedule within its asset's physical limits, every site bus balanced."""
    power, tol = schedule.power_kw, 1e-6
    for g in p.grids:
        import_limit, export_limit = (g.import_limit_kw, g.export_limit_kw) if g.available else (0.0, 0.0)
        assert power[g.id].max() <= import_limit + tol, f"{g.id} imports {power[g.id].max()} kW over {import_limit} kW"
        assert power[g.id].min() >= -export_limit - tol, (
            f"{g.id} exports {-power[g.id].min()} kW over {export_limit} kW"
        )
    for a in p.pvs:
        assert (power[a.id] >= -tol).all() and (power[a.id].to_numpy() <= a.available_kw + tol).all(), a.id
    for ld in p.loads:
        assert (power[ld.id] <= tol).all() and (power[ld.id].to_numpy() >= -ld.demand_kw - tol).all(), ld.id
    for b in p.batteries:
        assert power[b.id].max() <= b.discharge_max_kw + tol and power[b.id].min() >= -b.charge_max_kw - tol, b.id
        soc = schedule.soc_kwh[b.id]
        assert soc.min() >= min(b.soc_min_kwh, b.initial_soc_kwh) - tol and soc.max() <= b.soc_max_kwh + tol, b.id
    for v in p.evs:
        assert (power[v.id].to_numpy() <= v.discharge_max_kw + tol).all() and (
            power[v.id].to_numpy() >= -v.charge_max_kw - tol
        ).all()
    for site in p.sites:
        at_site = [a.id for group in (p.grids, p.pvs, p.loads, p.batteries) for a in group if a.site == site]
        ev_power = sum((power[v.id].where([s == site for s in v.charger_site], 0.0) for v in p.evs), 0.0)
        assert np.abs(power[at_site].sum(axis=1) + ev_power).max() < 1e-6, f"{site} bus does not balance"


def over_limit_problem(demand_kw=(20.0, 100.0, 100.0, 20.0), **assets) -> Problem:
    """A 100 kW load behind a 40 kW import limit, by default from 01:00 to 03:00 (20 kW otherwise)."""
    return problem(
        STEPS, [grid_spec(STEPS, 20.0, import_limit_kw=40.0)], loads=(load(STEPS, list(demand_kw)),), **assets
    )


@pytest.mark.parametrize("make", [solve, lambda p: fallback_schedule(p, "forced fallback")], ids=["milp", "rules"])
def test_load_past_the_import_limit_is_left_unserved_not_imported(make):
    p = over_limit_problem()
    schedule = make(p)
    check_limits(p, schedule)
    assert schedule.status in ("optimal", "fallback")
    assert schedule.power_kw["site_grid"].tolist() == pytest.approx([20.0, 40.0, 40.0, 20.0])
    assert schedule.load_shed_kwh == {"site": pytest.approx(120.0)}
    assert schedule.objective_terms["unserved_load_yen"] == pytest.approx(120.0 * p.settings.unserved_load_yen_per_kwh)
    assert "site 'site'" in schedule.message
    assert "04-15 01:00-03:00" in schedule.message
    assert "import limit 40 kW of site_grid" in schedule.message
    summary = schedule.summary()
    assert summary["load_shed_kwh"] == {"site": 120.0} and summary["load_shed_total_kwh"] == 120.0


@pytest.mark.parametrize("make", [solve, lambda p: fallback_schedule(p, "forced fallback")], ids=["milp", "rules"])
def test_storage_and_ev_cuts_come_before_unserved_load(make):
    # 100 kW from 00:00 to 02:00: a battery with 27 kWh deliverable covers part of the 120 kWh
    # missing; a taxi that would charge at the site is not charged while load goes unserved
    p = over_limit_problem(
        (100.0, 100.0, 20.0, 20.0),
        batteries=(battery(capacity_kwh=40.0, power_kw=30.0, efficiency=0.9, initial_kwh=30.0, soc_min_kwh=0.0),),
        evs=(ev(STEPS, [True] * STEPS, discharge_kw=0.0, initial_kwh=10.0),),
    )
    schedule = make(p)
    check_limits(p, schedule)
    ev_charge_in_shed_steps = -schedule.power_kw["taxi"].iloc[0:2]
    assert ev_charge_in_shed_steps.max() == pytest.approx(0.0, abs=1e-6)
    # 120 kWh missing over two hours; the battery can give 30 kWh * 0.9 = 27 kWh of it
    assert schedule.load_shed_kwh["site"] == pytest.approx(120.0 - 27.0, abs=1e-4)
    assert "storage bess exhausted" in schedule.message


def test_an_outage_leaves_the_load_unserved_and_says_so():
    steps = 2
    outage = dataclasses.replace(grid_spec(steps, 20.0, import_limit_kw=40.0), available=False)
    p = problem(steps, [outage], loads=(load(steps, 10.0),))
    for schedule in (solve(p), fallback_schedule(p, "forced fallback")):
        check_limits(p, schedule)
        assert schedule.power_kw["site_grid"].abs().max() == pytest.approx(0.0, abs=1e-9)
        assert schedule.load_shed_kwh["site"] == pytest.approx(20.0)
        assert "no grid at site_grid (outage)" in schedule.message


def test_rules_curtail_firm_pv_rather_than_export_past_the_limit():
    steps = 2
    p = problem(
        steps,
        [grid_spec(steps, 20.0, export_limit_kw=5.0)],
        pvs=(pv(steps, 30.0, curtailable=False),),
        loads=(load(steps, 10.0),),
    )
    schedule = fallback_schedule(p, "forced fallback")
    check_limits(p, schedule)
    assert schedule.power_kw["site_grid"].tolist() == pytest.approx([-5.0, -5.0])


def test_a_served_plan_reports_zero_unserved_per_site():
    p = problem(STEPS, [grid_spec(STEPS, 20.0, import_limit_kw=40.0)], loads=(load(STEPS, 30.0),))
    schedule = solve(p)
    check_limits(p, schedule)
    assert schedule.load_shed_kwh == {"site": 0.0} and schedule.message == ""
    assert len(schedule.power_kw) == STEPS


def test_plan_command_names_the_site_hours_and_limit(tmp_path):
    config = tmp_path / "arao.toml"
    text = open("config/arao.toml").read()
    assert 'peak_kw = 20.0\nprofile = "' in text.split('id = "shelter_central_load"')[1][:80]
    text = text.replace(
        'id = "shelter_central_load"\nsite = "shelter_central"\npeak_kw = 20.0',
        'id = "shelter_central_load"\nsite = "shelter_central"\npeak_kw = 100.0',
    )
    config.write_text(text)
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ems",
            "plan",
            "--config",
            str(config),
            "--date",
            "2026-04-15",
            "--out",
            str(out),
            "--no-plot",
            "--horizon-hours",
            "24",
            "--step-minutes",
            "60",
            "--inputs",
            "profiles",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["load_shed_kwh"]["shelter_central"] > 0
    assert all(kwh == 0 for site, kwh in summary["load_shed_kwh"].items() if site != "shelter_central")
    warning = [line for line in result.stderr.splitlines() if "unserved" in line]
    assert len(warning) == 1 and "site 'shelter_central'" in warning[0]
    assert "import limit 40 kW of shelter_central_grid" in warning[0]
    frame = pd.read_csv(out / "schedule.csv")
    assert frame.loc[frame["asset"] == "shelter_central_grid", "power_kw"].max() <= 40.0 + 1e-6
    table_row = next(line for line in result.stdout.splitlines() if line.startswith("shelter_central"))
    assert float(table_row.split()[-1]) == pytest.approx(summary["load_shed_kwh"]["shelter_central"], abs=0.05)


def test_storage_too_small_for_an_outage_serves_the_first_hours_and_sheds_the_last():
    # a shelter cut off from the grid: 5 kW of load for 4 h, a battery holding 10 kWh at 100 %
    # efficiency; the plan serves the first two hours and leaves the last two unserved, not
    # whichever hours the solver happens to pick (the grid or the sun may be back by then)
    cut_off = dataclasses.replace(grid_spec(STEPS, 20.0), available=False)
    p = problem(
        STEPS,
        [cut_off],
        loads=(load(STEPS, 5.0),),
        batteries=(battery(capacity_kwh=10.0, power_kw=5.0, efficiency=1.0, initial_kwh=10.0),),
    )
    schedule = solve(p)
    check_limits(p, schedule)
    assert schedule.power_kw["bess"].tolist() == pytest.approx([5.0, 5.0, 0.0, 0.0], abs=1e-6)
    assert schedule.load_shed_kwh == {"site": pytest.approx(10.0)}
