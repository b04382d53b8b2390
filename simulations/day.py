"""One simulated day of a portfolio: inputs loaded once per process, problems on a day grid,
and the figures read off a schedule (net import per site, KPIs)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ems.config import load_portfolio, profile_values
from ems.config.schema import Portfolio
from ems.optimise.inputs import problem_from_portfolio
from ems.optimise.problem import DrEventSpec, Problem, TimeGrid
from ems.optimise.schedule import Schedule
from simulations.forecast_errors import QuantileForecast, QuantileSource, forecaster_quantiles, profile_quantiles

DAY_HOURS = 24

# Quantile sources by name, so a scenario (sent to another process) names its source.
QUANTILE_SOURCES: dict[str, QuantileSource] = {"forecast": forecaster_quantiles, "profiles": profile_quantiles}


@lru_cache(maxsize=4)
def load_inputs(config_path: str) -> tuple[Portfolio, dict[str, tuple[float, ...]]]:
    """The portfolio and its profile values (read once per process)."""
    portfolio = load_portfolio(config_path)
    profiles = {name: profile_values(profile, Path(config_path)) for name, profile in portfolio.profiles.items()}
    return portfolio, profiles


def day_start(portfolio: Portfolio, date: dt.date) -> pd.Timestamp:
    return pd.Timestamp(date).tz_localize(portfolio.portfolio.timezone)


def day_grid(portfolio: Portfolio, date: dt.date) -> TimeGrid:
    step = portfolio.planning.step_minutes
    return TimeGrid(start=day_start(portfolio, date), step_minutes=step, steps=DAY_HOURS * 60 // step)


@lru_cache(maxsize=64)
def quantiles_for(source: str, config_path: str, grid: TimeGrid) -> dict[str, QuantileForecast]:
    """P10/P50/P90 per PV array and load on ``grid`` from the named source (cached per process:
    a rolling day asks for the same grids again). Callers must not modify the arrays."""
    if source not in QUANTILE_SOURCES:
        raise ValueError(f"unknown forecast source {source!r}; known: {sorted(QUANTILE_SOURCES)}")
    portfolio, profiles = load_inputs(config_path)
    return QUANTILE_SOURCES[source](portfolio, profiles, grid)


def day_problem(
    portfolio: Portfolio,
    profiles,
    start: pd.Timestamp,
    series_kw: dict[str, np.ndarray],
    dr_events: tuple[DrEventSpec, ...] = (),
    unavailable: frozenset[str] = frozenset(),
    initial_soc_kwh: dict[str, float] | None = None,
) -> Problem:
    return problem_from_portfolio(
        portfolio,
        start,
        profiles,
        forecasts_kw=series_kw,
        dr_events=dr_events,
        horizon_hours=DAY_HOURS,
        unavailable=unavailable,
        initial_soc_kwh=initial_soc_kwh,
    )


def site_net_import_kw(schedule: Schedule, problem: Problem) -> dict[str, np.ndarray]:
    return {g.site: schedule.power_kw[g.id].to_numpy(dtype=float) for g in problem.grids}


def scope_net_import_kw(site_kw: dict[str, np.ndarray], sites) -> np.ndarray:
    return np.sum([site_kw[s] for s in sites], axis=0)


def kpis(schedule: Schedule, problem: Problem) -> dict[str, float]:
    """The seed's goals for one plan: cost, CO2, the share of consumption met by local PV, peak.

    Consumption is site load plus EV charging at the sites; local PV used is PV output minus
    export (what the portfolio's own buses took); the share is capped at 1.
    """
    dt_h = problem.grid.step_h
    power = schedule.power_kw
    net = sum(power[g.id].to_numpy() for g in problem.grids)
    pv_kwh = float(sum(power[p.id].sum() for p in problem.pvs) * dt_h)
    export_kwh = float(sum(np.clip(-power[g.id].to_numpy(), 0, None).sum() for g in problem.grids) * dt_h)
    import_kwh = float(sum(np.clip(power[g.id].to_numpy(), 0, None).sum() for g in problem.grids) * dt_h)
    load_kwh = float(sum(ld.demand_kw.sum() for ld in problem.loads) * dt_h)
    ev_kwh = float(sum(np.clip(-power[e.id].to_numpy(), 0, None).sum() for e in problem.evs) * dt_h)
    consumption = load_kwh + ev_kwh
    local_pv = max(0.0, pv_kwh - export_kwh)
    return {
        "objective_yen": round(schedule.objective_yen, 2),
        "energy_cost_yen": round(schedule.cost_yen, 2),
        "co2_kg": round(schedule.report.co2_kg, 3),
        "local_pv_share": round(min(1.0, local_pv / consumption) if consumption > 0 else 0.0, 4),
        "peak_import_kw": round(float(np.max(net, initial=0.0)), 3),
        "grid_import_kwh": round(import_kwh, 3),
        "grid_export_kwh": round(export_kwh, 3),
        "pv_kwh": round(pv_kwh, 3),
        "consumption_kwh": round(consumption, 3),
    }
