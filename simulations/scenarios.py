"""A night's scenarios and the one function that runs any of them.

A :class:`NightContext` holds everything the scenarios of one night share (config path, day,
seed, events, the like-day history, the plan without events); a :class:`Scenario` names one
variation. :func:`run_scenario` is a function of those two alone, so it gives the same answer
in this process, in a local worker or on a Dask cluster. Each scenario has its own seed, drawn
from the night's seed and the scenario id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from dataclasses import asdict, dataclass, field
from typing import Literal, TypedDict

import numpy as np

from ems.optimise import solve
from ems.optimise.flexibility import solve_flexibility
from ems.optimise.problem import DrEventSpec, TimeGrid
from simulations.baselines import HistoryError, dr_baseline
from simulations.day import (
    day_grid,
    day_problem,
    kpis,
    load_inputs,
    quantiles_for,
    scope_net_import_kw,
    site_net_import_kw,
)
from simulations.events import DrEvent, active_mask, delivered, dr_specs
from simulations.forecast_errors import p50_series, sample_series
from simulations.rolling import day_outcome_dict, rolling_day

MEASURED = "*"  # history key for measured net import of the event's sites (from --history without a site column)
ACTUAL_DAY_SAMPLE = 0  # the forecast-error sample that plays "the actual day" in the rolling comparison


@dataclass(frozen=True)
class NightContext:
    config_path: str
    date: dt.date
    seed: int
    events: tuple[DrEvent, ...]
    history_kw: dict[dt.date, dict[str, list[float]]]  # day -> site (or MEASURED) -> 48 values
    no_event_site_kw: dict[str, list[float]]  # the plan without events, net import per site
    no_event_objective_yen: float
    quantile_source: str = "forecast"
    replan_steps: int = 2
    dr_days: tuple[dt.date, ...] = ()  # past DR days: never like days

    def fingerprint(self) -> str:
        """Identifies the night's inputs: results stored under another fingerprint are not reused."""
        with open(self.config_path, "rb") as handle:
            config = hashlib.sha256(handle.read()).hexdigest()
        payload = {
            "config": config,
            "date": self.date.isoformat(),
            "seed": self.seed,
            "quantiles": self.quantile_source,
            "events": [e.model_dump(mode="json") for e in self.events],
            "replan_steps": self.replan_steps,
            "dr_days": [d.isoformat() for d in self.dr_days],
            "history": {d.isoformat(): v for d, v in sorted(self.history_kw.items())},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Scenario:
    id: str
    kind: Literal["event", "sample", "unavailable", "flex", "rolling"]
    event_index: int = -1
    shift_minutes: int = 0
    scale: float = 1.0
    sample: int = -1
    device: str = ""
    direction: Literal["down", "up", ""] = ""  # of a flex scenario
    steps: tuple[int, ...] = field(default=())


class CustomerBaseline(TypedDict):
    """One customer's part of an event's baseline, as the scenario's JSON records it."""

    rule: str
    adjustment_kw: float
    raw_adjustment_kw: float
    cap_kw: float
    like_days: list[str]
    low_days: list[str]


def scenario_seed(night_seed: int, scenario_id: str) -> int:
    return zlib.crc32(f"{night_seed}/{scenario_id}".encode())


def customers(ctx: NightContext, event: DrEvent) -> dict[str, tuple[str, ...]]:
    """Each metered customer of the event and its sites: one per site, or the one meter of
    measured history without a site column."""
    if any(MEASURED in sites for sites in ctx.history_kw.values()):
        return {MEASURED: event.targets.site_ids}
    return {site: (site,) for site in event.targets.site_ids}


def event_baseline(
    ctx: NightContext, event: DrEvent, grid: TimeGrid, day_site_kw: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict]:
    """The event's baseline [kW per step]: the sum of its customers' baselines, each adjusted by
    that customer's own values ``day_site_kw`` on the event day; and its details."""
    mask, total = active_mask(event, grid), np.zeros(grid.steps)
    parts: dict[str, CustomerBaseline] = {}
    before = ctx.date - dt.timedelta(days=1)
    for customer, sites in customers(ctx, event).items():
        days = {d: np.asarray(v[customer]) for d, v in ctx.history_kw.items() if customer in v}
        metered = {ctx.date: scope_net_import_kw(day_site_kw, sites)}
        if before in days:
            metered[before] = days[before]
        try:
            baseline = dr_baseline(days, ctx.date, mask, event.event.direction, metered, frozenset(ctx.dr_days))
        except HistoryError as error:
            raise HistoryError(f"event {event.id}, site {customer}: {error}") from None
        total += baseline.baseline_kw
        parts[customer] = {
            "rule": baseline.rule,
            "adjustment_kw": round(baseline.adjustment_kw, 3),
            "raw_adjustment_kw": round(baseline.raw_adjustment_kw, 3),
            "cap_kw": round(baseline.cap_kw, 3),
            "like_days": [d.isoformat() for d in baseline.chosen_days],
            "low_days": [d.isoformat() for d in baseline.low_days],
        }
    details = {
        "rule": next(iter(parts.values()))["rule"],
        "adjustment_kw": round(sum(p["adjustment_kw"] for p in parts.values()), 3),
        "like_days": sorted({d for p in parts.values() for d in p["like_days"]}),
        "customers": parts,
    }
    return total, details


def event_baselines(ctx: NightContext, event: DrEvent, grid: TimeGrid) -> tuple[np.ndarray, np.ndarray, dict]:
    """(planning baseline [kW per step], plan-without-event baseline, details). The planning
    baseline is adjusted by the plan without the event: before the day, that is all there is."""
    plan_site_kw = {s: np.asarray(v) for s, v in ctx.no_event_site_kw.items()}
    planning_kw, details = event_baseline(ctx, event, grid, plan_site_kw)
    return planning_kw, scope_net_import_kw(plan_site_kw, event.targets.site_ids), details


def all_event_specs(ctx: NightContext, events: tuple[DrEvent, ...], grid: TimeGrid) -> tuple[DrEventSpec, ...]:
    """The events as the planner sees them, each against its planning baseline."""
    return tuple(spec for e in events for spec in dr_specs(e, grid, event_baselines(ctx, e, grid)[0]))


def _series(ctx: NightContext, grid: TimeGrid, sample: int | None) -> dict[str, np.ndarray]:
    quantiles = quantiles_for(ctx.quantile_source, ctx.config_path, grid)
    if sample is None:
        return p50_series(quantiles)
    return sample_series(quantiles, scenario_seed(ctx.seed, f"sample-{sample}"), grid.step_minutes)


def run_scenario(ctx: NightContext, scenario: Scenario) -> dict:
    """Run one scenario; a JSON-ready dict of its figures."""
    runner = {
        "event": _run_event,
        "sample": _run_sample,
        "unavailable": _run_unavailable,
        "flex": _run_flex,
        "rolling": _run_rolling,
    }[scenario.kind]
    return {
        "id": scenario.id,
        "kind": scenario.kind,
        "seed": scenario_seed(ctx.seed, scenario.id),
        "scenario": asdict(scenario),
    } | runner(ctx, scenario)


def _run_event(ctx: NightContext, scenario: Scenario) -> dict:
    portfolio, profiles = load_inputs(ctx.config_path)
    grid = day_grid(portfolio, ctx.date)
    event = ctx.events[scenario.event_index].shifted(scenario.shift_minutes, scenario.scale)
    planning_kw, plan_kw, _planning = event_baselines(ctx, event, grid)
    problem = day_problem(
        portfolio, profiles, grid.start, _series(ctx, grid, None), dr_events=dr_specs(event, grid, planning_kw)
    )
    schedule = solve(problem)
    site_kw = site_net_import_kw(schedule, problem)
    net_kw = scope_net_import_kw(site_kw, event.targets.site_ids)
    # settlement: the same-day adjustment from the day's own values, with the event (the meter's view)
    baseline_kw, details = event_baseline(ctx, event, grid, site_kw)
    terms = schedule.objective_terms
    return {
        "event_id": event.id,
        "base_event_id": ctx.events[scenario.event_index].id,
        "direction": event.event.direction,
        "start": event.start_on(grid.start).isoformat(),
        "duration_minutes": event.active_period.duration_minutes,
        "status": schedule.status,
        "objective_yen": round(schedule.objective_yen, 2),
        "value_yen": round(ctx.no_event_objective_yen - schedule.objective_yen, 2),
        "dr_revenue_yen": round(-terms.get("dr_revenue_yen", 0.0), 2),
        "dr_penalty_yen": round(terms.get("dr_penalty_yen", 0.0), 2),
        "vs_baseline": {k: round(v, 3) for k, v in delivered(event, grid, net_kw, baseline_kw).items()},
        "vs_planning_baseline": {k: round(v, 3) for k, v in delivered(event, grid, net_kw, planning_kw).items()},
        "vs_plan_without_event": {k: round(v, 3) for k, v in delivered(event, grid, net_kw, plan_kw).items()},
        "baseline": details,
        "series_kw": {
            "net_import": _round(net_kw),
            "baseline": _round(baseline_kw),
            "plan_without_event": _round(plan_kw),
        },
        "kpis": kpis(schedule, problem),
    }


def _run_sample(ctx: NightContext, scenario: Scenario) -> dict:
    portfolio, profiles = load_inputs(ctx.config_path)
    grid = day_grid(portfolio, ctx.date)
    problem = day_problem(
        portfolio,
        profiles,
        grid.start,
        _series(ctx, grid, scenario.sample),
        dr_events=all_event_specs(ctx, ctx.events, grid),
    )
    schedule = solve(problem)
    return {"status": schedule.status, "kpis": kpis(schedule, problem)}


def _run_unavailable(ctx: NightContext, scenario: Scenario) -> dict:
    portfolio, profiles = load_inputs(ctx.config_path)
    grid = day_grid(portfolio, ctx.date)
    problem = day_problem(
        portfolio,
        profiles,
        grid.start,
        _series(ctx, grid, None),
        dr_events=all_event_specs(ctx, ctx.events, grid),
        unavailable=frozenset({scenario.device}),
    )
    schedule = solve(problem)
    return {
        "device": scenario.device,
        "status": schedule.status,
        "kpis": kpis(schedule, problem),
        "dr_shortfall_kwh": round(schedule.report.dr_shortfall_kwh, 3),
    }


def _run_flex(ctx: NightContext, scenario: Scenario) -> dict:
    portfolio, profiles = load_inputs(ctx.config_path)
    grid = day_grid(portfolio, ctx.date)
    problem = day_problem(portfolio, profiles, grid.start, _series(ctx, grid, None))
    reference = np.sum([np.asarray(v) for v in ctx.no_event_site_kw.values()], axis=0)
    if scenario.direction == "":
        raise ValueError(f"scenario {scenario.id}: a flex scenario needs a direction")
    result = solve_flexibility(problem, scenario.steps, scenario.direction, reference)
    energy_kwh = result.flex_kw * len(scenario.steps) * grid.step_h
    cost = result.objective_yen - ctx.no_event_objective_yen
    return {
        "direction": scenario.direction,
        "steps": list(scenario.steps),
        "status": result.status,
        "flex_kw": round(result.flex_kw, 3),
        "energy_kwh": round(energy_kwh, 3),
        "cost_yen": round(cost, 2),
        "cost_yen_per_kwh": round(cost / energy_kwh, 2) if energy_kwh > 1e-6 else None,
    }


def _run_rolling(ctx: NightContext, scenario: Scenario) -> dict:
    portfolio, profiles = load_inputs(ctx.config_path)
    grid = day_grid(portfolio, ctx.date)
    actual = day_problem(portfolio, profiles, grid.start, _series(ctx, grid, ACTUAL_DAY_SAMPLE))

    def forecast_for(start):
        return _series(ctx, TimeGrid(start=start, step_minutes=grid.step_minutes, steps=grid.steps), None)

    outcome, _realised = rolling_day(portfolio, profiles, actual, forecast_for, ctx.replan_steps)
    return {"actual_sample": ACTUAL_DAY_SAMPLE} | day_outcome_dict(outcome)


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), 3) for v in values]
