"""Every default is set once, in the config schema, and every penalty and failsafe is a key that
reaches the code that uses it."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from ems.bcp import bcp_problem_from_portfolio, load_outage
from ems.bcp.problem import BcpSolverSettings
from ems.config import load_portfolio, profile_values
from ems.config.bcp import BcpSettings
from ems.config.schema import Planning
from ems.control.setpoints import failsafe_setpoint_kw
from ems.optimise import SolverSettings, solve
from ems.planning import plan_inputs
from tests.optimise_fixtures import ev, grid_spec, problem

START = pd.Timestamp("2026-04-15 00:00", tz="Asia/Tokyo")


def test_solver_settings_take_their_defaults_from_the_schema():
    planning = Planning()
    for item in dataclasses.fields(SolverSettings):
        if item.name != "terminal_value_yen_per_kwh":  # the schema's none means "from the prices"
            assert getattr(SolverSettings(), item.name) == getattr(planning, item.name), item.name
    bcp = BcpSettings()
    for item in dataclasses.fields(BcpSolverSettings):
        assert getattr(BcpSolverSettings(), item.name) == getattr(bcp, item.name), item.name


def edited(tmp_path, *sections: str):
    text = open("config/arao.toml").read()
    for section in sections:
        header, key = section.split("\n", 1)
        text = (
            text.replace(f"\n{header}\n", f"\n{header}\n{key}\n", 1)
            if f"\n{header}\n" in text
            else f"{text}\n{section}\n"
        )
    path = tmp_path / "arao.toml"
    path.write_text(text)
    return path


def test_driving_shortfall_price_and_tie_breaker_come_from_the_config(tmp_path):
    config = edited(
        tmp_path, "[planning]\ndrive_shortfall_penalty_yen_per_kwh = 1234.0\nthroughput_epsilon_yen_per_kwh = 0.002"
    )
    _portfolio, p = plan_inputs(config, START, horizon_hours=6)
    assert p.settings.drive_shortfall_penalty_yen_per_kwh == 1234.0
    assert p.settings.throughput_epsilon_yen_per_kwh == 0.002


def test_the_driving_shortfall_price_is_what_an_undone_duty_costs():
    steps = 4
    taxi = ev(steps, [0, 0, 0, 0], initial_kwh=2.0, drive_kwh=[0, 3.0, 0, 0])
    for price in (5000.0, 777.0):
        p = problem(steps, [grid_spec(steps, 10.0)], evs=(taxi,))
        p = dataclasses.replace(p, settings=dataclasses.replace(p.settings, drive_shortfall_penalty_yen_per_kwh=price))
        schedule = solve(p)
        assert schedule.report.drive_shortfall_kwh == pytest.approx(1.0, abs=1e-6)  # 2 kWh on board, 3 needed
        assert schedule.objective_terms["drive_shortfall_yen"] == pytest.approx(price, abs=1e-6)


def test_charger_failsafe_power_is_a_control_key(tmp_path):
    default = load_portfolio("config/arao.toml")
    assert failsafe_setpoint_kw(default, "depot_c01") == -3.0
    config = edited(tmp_path, "[control]\ncharger_failsafe_kw = 1.5")
    assert failsafe_setpoint_kw(load_portfolio(config), "depot_c01") == -1.5
    assert failsafe_setpoint_kw(load_portfolio(config), "city_hall_bess") == 0.0


def test_bcp_weights_and_search_time_are_bcp_keys(tmp_path):
    config = edited(tmp_path, "[bcp]\ndwell_weight_kwh = 0.02\nsecondary_time_limit_s = 0.5")
    portfolio = load_portfolio(config)
    profiles = {name: profile_values(profile, config) for name, profile in portfolio.profiles.items()}
    settings = bcp_problem_from_portfolio(portfolio, load_outage("config/outages/typhoon-72h.toml"), profiles).settings
    assert settings.dwell_weight_kwh == 0.02 and settings.secondary_time_limit_s == 0.5
    assert settings.vehicle_call_weight_kwh == BcpSettings().vehicle_call_weight_kwh
