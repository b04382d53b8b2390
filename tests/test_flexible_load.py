"""The flexible load, the worked example of docs/adding-an-asset-kind.md: planned by the MILP,
priced by ``evaluate``, placed by the rule-based fallback, written to schedule.csv and
summary.json by ``ems plan``, and mapped to a set-point."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ems.config import ConfigError, load_portfolio
from ems.control.setpoints import failsafe_setpoint_kw, setpoint_targets, writable_devices
from ems.optimise import ProblemError, fallback_schedule, solve
from ems.optimise.components.flexible_load import FlexibleLoadSpec, periods_on_grid
from tests.optimise_fixtures import START, grid_spec, load, problem

HEATER = """
[[flexible_loads]]
id = "city_hall_heater"
site = "city_hall"
power_kw = 12.0
energy_per_day_kwh = 36.0
window_start = 22:00:00
window_end = 06:00:00
failsafe_kw = -1.5
"""


def heater(
    steps: int, windows: list[tuple[int, int, float]], power_kw: float = 5.0, penalty: float = 300.0
) -> FlexibleLoadSpec:
    power = np.zeros(steps)
    for first, end, _kwh in windows:
        power[first:end] = power_kw
    return FlexibleLoadSpec("heater", "site", power, tuple(windows), penalty)


def test_plan_draws_the_energy_in_the_cheapest_steps_of_the_window():
    steps = 8
    prices = [30.0, 25.0, 8.0, 6.0, 20.0, 30.0, 1.0, 1.0]  # the cheapest steps (6, 7) are outside the window
    p = problem(steps, [grid_spec(steps, prices)], loads=(load(steps, 2.0),), assets=(heater(steps, [(0, 6, 10.0)]),))
    schedule = solve(p)
    assert schedule.status == "optimal"
    assert schedule.power_kw["heater"].to_numpy() == pytest.approx([0, 0, -5, -5, 0, 0, 0, 0], abs=1e-6)
    assert schedule.objective_terms["energy_cost_yen"] == pytest.approx(2.0 * sum(prices) + 5 * 8.0 + 5 * 6.0, abs=1e-6)
    assert schedule.report.kind_figures["flexible_load_kwh"] == pytest.approx(10.0, abs=1e-6)
    assert schedule.report.kind_figures["flexible_load_shortfall_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert schedule.objective_yen == pytest.approx(schedule.report.solver_objective_yen, rel=1e-6, abs=1e-3)


def test_energy_dearer_than_its_penalty_is_left_short_and_priced():
    steps = 4
    p = problem(
        steps, [grid_spec(steps, [500.0, 400.0, 450.0, 500.0])], assets=(heater(steps, [(0, 4, 6.0)], penalty=300.0),)
    )
    schedule = solve(p)
    assert schedule.power_kw["heater"].to_numpy() == pytest.approx(np.zeros(steps), abs=1e-6)
    assert schedule.report.kind_figures["flexible_load_shortfall_kwh"] == pytest.approx(6.0, abs=1e-6)
    assert schedule.objective_terms["flexible_load_shortfall_yen"] == pytest.approx(1800.0, abs=1e-6)
    summary = schedule.summary()
    assert summary["flexible_load_shortfall_kwh"] == pytest.approx(6.0)


def test_rule_based_fallback_runs_from_the_opening_and_waits_first_at_the_import_limit():
    steps = 6
    p = problem(
        steps,
        [grid_spec(steps, 10.0, import_limit_kw=6.0)],
        loads=(load(steps, [2, 2, 4, 2, 2, 2]),),
        assets=(heater(steps, [(1, 5, 12.0)]),),
    )
    baseline = fallback_schedule(p, "test")
    # from step 1 at what fits under the 6 kW import limit beside the load, until the 12 kWh are in
    assert baseline.power_kw["heater"].to_numpy() == pytest.approx([0, -4, -2, -4, -2, 0])
    assert baseline.load_shed_kwh == {"site": 0.0}
    assert baseline.report.kind_figures["flexible_load_shortfall_kwh"] == pytest.approx(0.0)
    planned = solve(p)
    assert planned.report.kind_figures["flexible_load_shortfall_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert -planned.power_kw["heater"].to_numpy() + np.array([2, 2, 4, 2, 2, 2]) == pytest.approx(
        planned.power_kw["site_grid"].to_numpy(), abs=1e-6
    )
    assert planned.power_kw["site_grid"].max() <= 6.0 + 1e-6


def test_flexibility_shifts_the_load_within_its_window_and_never_drops_it():
    from ems.optimise.flexibility import solve_flexibility

    steps = 6
    p = problem(
        steps,
        [grid_spec(steps, [5.0, 5.0, 20.0, 21.0, 20.0, 20.0])],
        loads=(load(steps, 2.0),),
        assets=(heater(steps, [(0, 4, 15.0)], penalty=300.0),),
    )
    reference = solve(p)
    assert reference.power_kw["heater"].to_numpy() == pytest.approx([-5, -5, -5, 0, 0, 0], abs=1e-6)
    net = reference.power_kw["site_grid"].to_numpy()
    result = solve_flexibility(p, [0, 1], "down", net)
    # steps 2 and 3 hold at most 10 of the 15 kWh, so 2.5 kW must stay in each of steps 0 and 1:
    # shedding more would leave the heater's energy undelivered, which flexibility never buys
    assert result.flex_kw == pytest.approx(2.5, abs=1e-6)
    assert result.net_import_kw.sum() == pytest.approx(6 * 2.0 + 15.0, abs=1e-6)


def test_an_unregistered_spec_is_refused_by_name():
    @dataclasses.dataclass(frozen=True)
    class Kettle:
        id: str

    with pytest.raises(ProblemError, match="'kettle': no registered asset kind takes a Kettle"):
        problem(2, [grid_spec(2, 10.0)], assets=(Kettle("kettle"),)).validate()


def test_a_window_past_midnight_owes_its_energy_pro_rata_at_the_horizon_edges(tmp_path):
    config = tmp_path / "arao.toml"
    config.write_text(open("config/arao.toml").read() + HEATER)
    heater_config = load_portfolio(config).flexible_loads[0]
    from ems.optimise.problem import TimeGrid

    grid = TimeGrid(start=START, step_minutes=30, steps=96)
    power, periods = periods_on_grid(heater_config, grid, "Asia/Tokyo")
    # 00:00-06:00 (6 of the 8 h opened the day before), 22:00-06:00, 22:00-24:00 (2 of 8 h)
    assert periods == ((0, 12, 27.0), (44, 60, 36.0), (92, 96, 9.0))
    assert power.sum() * 0.5 == pytest.approx(12.0 * (6 + 8 + 2))


def test_ems_plan_places_the_load_and_writes_it_out(tmp_path):
    config = tmp_path / "arao.toml"
    config.write_text(open("config/arao.toml").read() + HEATER)
    out = tmp_path / "plan"
    subprocess.run(
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
            "--inputs",
            "profiles",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    frame = pd.read_csv(out / "schedule.csv")
    rows = frame[frame["kind"] == "flexible_load"]
    assert set(rows["asset"]) == {"city_hall_heater"} and set(rows["site"]) == {"city_hall"}
    assert rows["soc_kwh"].isna().all()
    hours = pd.to_datetime(rows["time"].str.slice(11, 16), format="%H:%M").dt.hour
    drawn = -rows["power_kw"]
    assert drawn.min() >= -1e-6 and drawn.max() <= 12.0 + 1e-6
    assert drawn[(hours >= 6) & (hours < 22)].abs().max() < 1e-6  # nothing outside the window
    assert drawn.sum() * 0.5 == pytest.approx(27.0 + 36.0 + 9.0, abs=1e-3)  # every period's energy is in
    at_sites = frame[frame["site"].notna()]
    assert at_sites.groupby(["time", "site"])["power_kw"].sum().abs().max() < 1e-2  # still balanced
    summary = json.loads((out / "summary.json").read_text())
    assert summary["flexible_load_shortfall_kwh"] == pytest.approx(0.0, abs=1e-3)
    assert summary["flexible_load_kwh"] == pytest.approx(72.0, abs=1e-3)
    assert "flexible_load_shortfall_yen" in summary["objective_terms_yen"]


def test_setpoint_follows_the_plan_and_falls_back_to_its_failsafe(tmp_path):
    config = tmp_path / "arao.toml"
    config.write_text(open("config/arao.toml").read() + HEATER)
    portfolio = load_portfolio(config)
    from ems.planning import plan_inputs

    _portfolio, p = plan_inputs(config, START, horizon_hours=24)
    schedule = solve(p)
    assert "city_hall_heater" in writable_devices(portfolio)
    drawing = schedule.power_kw.index[schedule.power_kw["city_hall_heater"] < -1.0]
    assert len(drawing)
    now = drawing[0].to_pydatetime() + dt.timedelta(minutes=5)
    targets = setpoint_targets(portfolio, schedule.power_kw, now, {}, {"city_hall_heater", "city_hall_bess"})
    assert targets["city_hall_heater"] == pytest.approx(schedule.power_kw.loc[drawing[0], "city_hall_heater"])
    assert targets["city_hall_bess"] == pytest.approx(schedule.power_kw.loc[drawing[0], "city_hall_bess"])
    assert setpoint_targets(portfolio, schedule.power_kw, START + pd.Timedelta(days=3), {}, {"city_hall_heater"}) == {
        "city_hall_heater": 0.0
    }
    assert failsafe_setpoint_kw(portfolio, "city_hall_heater") == -1.5


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (
            ("energy_per_day_kwh = 36.0", "energy_per_day_kwh = 200.0"),
            "flexible_loads[id=city_hall_heater]: Value error, "
            "energy_per_day_kwh 200 exceeds what power_kw 12 can deliver in its 8 h",
        ),
        (('site = "city_hall"\npower_kw', 'site = "nowhere"\npower_kw'), "flexible_loads[id=city_hall_heater].site"),
        (
            ("power_kw = 12.0", "power_kw = -12.0"),
            "flexible_loads[id=city_hall_heater].power_kw: Input should be greater than 0",
        ),
    ],
)
def test_a_bad_flexible_load_stops_the_config_naming_the_key(tmp_path, edit, where):
    config = tmp_path / "bad.toml"
    config.write_text(open("config/arao.toml").read() + HEATER.replace(*edit))
    with pytest.raises(ConfigError) as error:
        load_portfolio(config)
    assert where in str(error.value)
