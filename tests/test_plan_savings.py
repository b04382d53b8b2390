"""The saving a plan headlines is the energy saving over its horizon; the demand charge (a new
peak billed for months) is reported on its own, in the table and in summary.json."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from ems.config import load_portfolio
from ems.optimise import solve
from tests.optimise_fixtures import grid_spec, load, problem


def test_energy_cost_and_demand_charge_are_apart_on_a_hand_case():
    # 10 kW for 2 h at 20 yen/kWh and 0.5 kg/kWh priced 10 yen/kg, 5 kW over a 5 kW contract
    grid = grid_spec(2, 20.0, co2=0.5, carbon_price=10.0, contract_demand_kw=5.0, demand_charge=1000.0)
    schedule = solve(problem(2, [grid], loads=(load(2, 10.0),)))
    summary = schedule.summary()
    assert summary["energy_cost_yen"] == pytest.approx(2 * 10 * 20 + 2 * 10 * 0.5 * 10)  # 400 bought + 100 CO2
    assert summary["demand_charge_yen"] == pytest.approx(5 * 1000)
    assert summary["cost_yen"] == pytest.approx(400 + 5000)  # the invoice: no internal CO2 price


def test_one_hour_plan_headlines_the_energy_saving_not_a_year_of_demand_charge(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ems",
            "plan",
            "--config",
            "config/arao.toml",
            "--date",
            "2026-04-15",
            "--horizon-hours",
            "1",
            "--inputs",
            "profiles",
            "--no-plot",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    terms = summary["objective_terms_yen"]
    assert summary["energy_cost_yen"] == pytest.approx(
        terms["energy_cost_yen"] + terms["carbon_cost_yen"] + terms["degradation_yen"], abs=0.02
    )
    assert summary["demand_charge_yen"] == terms["demand_charge_yen"]
    energy_saving = summary["baseline_energy_cost_yen"] - summary["energy_cost_yen"]
    demand_saving = summary["baseline_demand_charge_yen"] - summary["demand_charge_yen"]
    # one hour cannot save more on energy than every connection importing flat out at the top price
    portfolio = load_portfolio("config/arao.toml")
    tariff = portfolio.tariffs["default"]
    top_price = max(tariff.import_price_yen_per_kwh) + max(tariff.co2_kg_per_kwh) * tariff.carbon_price_yen_per_kg
    assert abs(energy_saving) <= sum(g.import_limit_kw for g in portfolio.grid_connections) * 1.0 * top_price

    lines = result.stdout.splitlines()
    headline = next(line for line in lines if "saving" in line)
    assert headline.startswith("energy cost ")
    assert f"saving {energy_saving:,.0f} yen" in headline
    demand_line = next(line for line in lines if line.startswith("demand charge"))
    assert f"baseline {summary['baseline_demand_charge_yen']:,.0f} yen" in demand_line
    total = next(line for line in lines if line.startswith("total"))
    assert re.search(rf"of which {demand_saving:,.0f} yen demand charge", total)
