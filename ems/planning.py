"""Assemble a plan's problem from a portfolio file and the forecasts (floor of ems/control):
the command line, the control loop and the simulations all start a plan here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from ems.config import Portfolio, load_portfolio, profile_values

if TYPE_CHECKING:
    from ems.optimise.problem import Problem
    from ems.optimise.schedule import Schedule
    from ems.store import Store


class PlanInputs(NamedTuple):
    """What a plan starts from: the portfolio as planned (the file's, or the one handed in) and its problem."""

    portfolio: Portfolio
    problem: Problem


class PlanResult(NamedTuple):
    """A plan written out: the schedule, the problem it solved and the summary written beside it."""

    schedule: Schedule
    problem: Problem
    summary: dict[str, Any]


def plan_inputs(
    config_path: str | Path,
    start: pd.Timestamp,
    step_minutes: int | None = None,
    horizon_hours: int | None = None,
    inputs: str = "profiles",
    history: dict | None = None,
    portfolio: Portfolio | None = None,
    store: Store | None = None,
    **problem_options: Any,
) -> PlanInputs:
    """The portfolio and the problem (:class:`PlanInputs`) for a plan from ``start``.

    ``inputs="profiles"``: PV and load from the config's fixed profiles (exact, for tests);
    ``"forecast"``: from the forecasters (``forecasting.portfolio_forecast``, P50), using the
    measured ``history`` per asset when given. With ``[market]``, energy is priced by date
    from the prices in ``store`` (see ems/control/prices.py) unless ``day_prices`` is given.
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
    if portfolio.market is not None and "day_prices" not in problem_options:
        from ems.control.prices import live_day_prices

        hours = horizon_hours or portfolio.planning.horizon_hours
        problem_options["day_prices"] = live_day_prices(portfolio, start, hours, store)
    if portfolio.openadr is not None and "dr_events" not in problem_options:
        problem_options["dr_events"] = _accepted_events(
            portfolio, Path(portfolio.openadr.events_dir), start, step_minutes, horizon_hours
        )
    problem = problem_from_portfolio(
        portfolio,
        start,
        profiles,
        forecasts_kw=forecasts_kw,
        step_minutes=step_minutes,
        horizon_hours=horizon_hours,
        **problem_options,
    )
    return PlanInputs(portfolio, problem)


def make_plan(
    config_path: str | Path,
    start: pd.Timestamp,
    out_dir: Path,
    *,
    step_minutes: int | None = None,
    horizon_hours: int | None = None,
    inputs: str = "forecast",
    plot: bool = True,
    **problem_options: Any,
) -> PlanResult:
    """Plan from ``start`` and write ``schedule.csv``, ``summary.json`` (with the rule-based
    baseline's cost) and ``plan.png`` into ``out_dir``; returns the :class:`PlanResult`."""
    from ems.optimise import fallback_schedule, solve, write_schedule
    from ems.optimise.plot import plot_schedule
    from ems.optimise.schedule import stored_energy_change_kwh

    portfolio = problem_options.pop("portfolio", None) or load_portfolio(config_path)
    if portfolio.market is not None and "day_prices" not in problem_options:  # a plan to submit: no silent fallback
        from ems.control.prices import market_day_prices

        hours = horizon_hours or portfolio.planning.horizon_hours
        problem_options["day_prices"] = market_day_prices(portfolio, start, hours, problem_options.get("store"))
    portfolio, problem = plan_inputs(
        config_path, start, step_minutes, horizon_hours, inputs=inputs, portfolio=portfolio, **problem_options
    )
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
        "baseline_co2_kg": round(baseline.report.co2_kg, 3),
        "start": start.isoformat(),
        "step_minutes": problem.grid.step_minutes,
        "steps": problem.grid.steps,
        "portfolio": portfolio.portfolio.name,
        "inputs": inputs,
    }
    extra |= _market_summary(problem_options.get("day_prices"), problem, zone)
    summary = write_schedule(schedule, problem, out_dir, extra, timezone=zone)
    write_plan_of_demand(schedule, problem, out_dir, zone)
    if plot:
        title = f"{portfolio.portfolio.name}: plan from {start:%Y-%m-%d %H:%M %Z}"
        plot_schedule(schedule, problem, Path(out_dir) / "plan.png", zone, title=title)
    return PlanResult(schedule, problem, summary)


def _accepted_events(
    portfolio: Portfolio, events_dir: Path, start: pd.Timestamp, step_minutes: int | None, horizon_hours: int | None
):
    """DR events the VEN accepted (ems/control/ven.py), on the plan's grid."""
    from ems.control.ven import accepted_dr_specs
    from ems.optimise.problem import TimeGrid

    step = step_minutes or portfolio.planning.step_minutes
    hours = horizon_hours or portfolio.planning.horizon_hours
    return accepted_dr_specs(events_dir, TimeGrid(pd.Timestamp(start), step, hours * 60 // step))


def _market_summary(day_prices, problem, zone: str) -> dict:
    """Where the plan's prices came from: which steps used the price forecast."""
    if day_prices is None:
        return {"prices": "tariff"}
    from ems.control.prices import forecast_slot_times

    slots = forecast_slot_times(day_prices, problem.grid.index, zone)
    return {
        "prices": "jepx",
        "price_dates_published": sorted(
            str(d) for d in day_prices.spot_yen_per_kwh if d not in day_prices.forecast_dates
        ),
        "price_dates_forecast": sorted(str(d) for d in day_prices.forecast_dates),
        "price_forecast_slots": slots,
    }


def write_plan_of_demand(schedule, problem, out_dir: Path, zone: str) -> Path:
    """``demand_plan.csv``: the planned net import per 30-minute slot, by site and in total."""
    from ems.market.demand_plan import demand_plan_frame, write_demand_plan

    grid_kw = pd.DataFrame({g.site: schedule.power_kw[g.id] for g in problem.grids})
    return write_demand_plan(demand_plan_frame(grid_kw, problem.grid.step_minutes, zone), out_dir)
