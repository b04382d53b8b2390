"""Assemble a plan's problem from a portfolio file and the forecasts (floor of ems/control):
the command line, the control loop and the simulations all start a plan here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ems.config import Portfolio, load_portfolio, profile_values


def plan_inputs(config_path: Path, start: pd.Timestamp, step_minutes: int | None = None, horizon_hours: int | None = None,
                inputs: str = "profiles", history: dict | None = None, portfolio: Portfolio | None = None,
                **problem_options):
    """(portfolio, problem) for a plan from ``start``.

    ``inputs="profiles"``: PV and load from the config's fixed profiles (exact, for tests);
    ``"forecast"``: from the forecasters (``forecasting.portfolio_forecast``, P50), using the
    measured ``history`` per asset when given.
    """
    from ems.optimise.inputs import problem_from_portfolio

    portfolio = portfolio or load_portfolio(config_path)
    profiles = {name: profile_values(profile, config_path) for name, profile in portfolio.profiles.items()}
    forecasts_kw = None
    if inputs == "forecast":
        from forecasting import portfolio_forecast

        step = step_minutes if step_minutes is not None else portfolio.planning.step_minutes
        steps = (horizon_hours if horizon_hours is not None else portfolio.planning.horizon_hours) * 60 // step
        forecast = portfolio_forecast(portfolio, start, steps=steps, step_minutes=step, history=history)
        forecasts_kw = {asset: forecast.p50(asset).to_numpy() for asset in forecast.frames}
    problem = problem_from_portfolio(portfolio, start, profiles, forecasts_kw=forecasts_kw, step_minutes=step_minutes,
                                     horizon_hours=horizon_hours, **problem_options)
    return portfolio, problem


def make_plan(config_path: Path, start: pd.Timestamp, out_dir: Path, *, step_minutes: int | None = None,
              horizon_hours: int | None = None, inputs: str = "forecast", plot: bool = True, **problem_options):
    """Plan from ``start`` and write ``schedule.csv``, ``summary.json`` (with the rule-based
    baseline's cost) and ``plan.png`` into ``out_dir``; returns (schedule, problem, summary)."""
    from ems.optimise import fallback_schedule, solve, write_schedule
    from ems.optimise.schedule import stored_energy_change_kwh
    from ems.optimise.plot import plot_schedule

    portfolio, problem = plan_inputs(config_path, start, step_minutes, horizon_hours, inputs=inputs, **problem_options)
    zone = portfolio.portfolio.timezone
    schedule = solve(problem)
    baseline = fallback_schedule(problem, "rule-based baseline")
    extra = {
        "baseline_cost_yen": round(baseline.cost_yen, 2),
        "baseline_energy_cost_yen": round(baseline.energy_cost_yen, 2),
        "baseline_demand_charge_yen": round(baseline.demand_charge_yen, 2),
        "stored_energy_change_kwh": round(stored_energy_change_kwh(schedule, problem), 3),
        "baseline_stored_energy_change_kwh": round(stored_energy_change_kwh(baseline, problem), 3),
        "baseline_objective_yen": round(baseline.objective_yen, 2),
        "baseline_co2_kg": round(baseline.shortfalls["co2_kg"], 3),
        "start": start.isoformat(),
        "step_minutes": problem.grid.step_minutes,
        "steps": problem.grid.steps,
        "portfolio": portfolio.portfolio.name,
        "inputs": inputs,
    }
    summary = write_schedule(schedule, problem, out_dir, extra, timezone=zone)
    if plot:
        title = f"{portfolio.portfolio.name}: plan from {start:%Y-%m-%d %H:%M %Z}"
        plot_schedule(schedule, problem, Path(out_dir) / "plan.png", zone, title=title)
    return schedule, problem, summary
