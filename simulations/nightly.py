"""The nightly demand-response run: tomorrow's plan, its flexibility, events against two
baselines, forecast-error and outage scenarios, the perfect-foresight reference, and a report.

:func:`run_nightly` is the callable the controller's scheduler is handed (default 01:00) and
what ``ems simulate nightly`` runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ems.config.schema import Portfolio
from ems.optimise import solve, write_schedule
from ems.optimise.problem import Problem, TimeGrid
from ems.optimise.schedule import Schedule
from simulations.baselines import SEARCH_DAYS, HistoryError, adjustment_slots, like_days, read_history_csv, rule_for
from simulations.day import day_grid, day_problem, kpis, load_inputs, quantiles_for, site_net_import_kw
from simulations.events import DrEvent, active_mask, check_event, load_event
from simulations.forecast_errors import p50_series, sample_series
from simulations.scenarios import NightContext, Scenario, all_event_specs, scenario_seed
from simulations.sweep import ResultStore, run_sweep

log = logging.getLogger(__name__)

DEFAULT_RUN_AT = dt.time(1, 0)  # local; the controller's scheduler runs nightly_job then
EVENT_VARIANTS = ((0, 1.0), (-120, 1.0), (120, 1.0), (0, 0.5), (0, 1.5))  # (shift minutes, size factor)
BLOCK_HOURS = 3


@dataclass(frozen=True)
class NightlyOptions:
    samples: int = 20
    seed: int = 0
    flexibility: str = "all"  # all: every slot and 3-hour block; blocks: blocks only; none
    event_variants: bool = True
    unavailable: bool = True
    rolling: bool = True
    replan_steps: int = 2
    inputs: str = "forecast"  # PV and load quantiles: "forecast" (the forecasters) or "profiles" (config)
    dr_days: tuple[dt.date, ...] = ()  # past DR days, never like days (besides those flagged in --history)


def default_event_files(config_path: Path) -> list[Path]:
    return sorted((config_path.parent / "events").glob("*.toml"))


def load_events(paths: list[Path], sites: tuple[str, ...], grid: TimeGrid) -> tuple[DrEvent, ...]:
    events = []
    for path in paths:
        event = load_event(path)
        check_event(event, sites, grid, str(path))
        events.append(event)
    ids = [e.id for e in events]
    if len(set(ids)) != len(ids):
        raise ValueError(f"event ids must be unique across files: {ids}")
    return tuple(events)


def history_from_plans(
    config_path: str,
    date: dt.date,
    seed: int,
    quantile_source: str,
    dr_days: frozenset[dt.date] = frozenset(),
    before_midnight: bool = False,
) -> dict[dt.date, dict[str, list[float]]]:
    """The like days, each planned without events on a seeded forecast-error sample (standing in
    for metered history until the product has it); with ``before_midnight`` (an event's adjustment
    window starts the day before) also the day before each of them and before ``date``."""
    portfolio, profiles = load_inputs(config_path)
    days = like_days(date, rule_for(date, "down").days, dr_days)
    if before_midnight:
        days = sorted({*days, *(d - dt.timedelta(days=1) for d in (*days, date))}, reverse=True)
    history = {}
    for day in days:
        grid = day_grid(portfolio, day)
        quantiles = quantiles_for(quantile_source, config_path, grid)
        series = sample_series(quantiles, scenario_seed(seed, f"history-{day.isoformat()}"), grid.step_minutes)
        problem = day_problem(portfolio, profiles, grid.start, series)
        schedule = solve(problem)
        history[day] = {site: [float(v) for v in kw] for site, kw in site_net_import_kw(schedule, problem).items()}
    return history


def history_from_csv(
    path: Path, date: dt.date, timezone: str
) -> tuple[dict[dt.date, dict[str, list[float]]], frozenset[dt.date]]:
    """Measured days of the ``SEARCH_DAYS`` before ``date`` ({day: {site: values}}) and the past DR
    days the file flags."""
    measured, dr_days = read_history_csv(path, timezone)
    first = date - dt.timedelta(days=SEARCH_DAYS)
    history: dict[dt.date, dict[str, list[float]]] = {}
    for site, days in measured.items():
        for day, values in days.items():
            if first <= day < date:
                history.setdefault(day, {})[site] = [float(v) for v in values]
    if not history:
        raise HistoryError(f"{path}: no complete day in the {SEARCH_DAYS} days before {date}")
    return dict(sorted(history.items())), dr_days


def starts_before_midnight(events: tuple[DrEvent, ...], grid: TimeGrid) -> bool:
    """Whether an event (or one of its variants) has its adjustment window reach into the day before."""
    shifts = {m for m, _scale in EVENT_VARIANTS}
    return any(
        adjustment_slots(active_mask(e.shifted(m, 1.0), grid))[0] < 0
        for e in events
        for m in shifts
        if grid.start <= e.shifted(m, 1.0).start_on(grid.start) < grid.end
    )


def night_scenarios(
    ctx: NightContext, grid: TimeGrid, battery_ids: list[str], options: NightlyOptions
) -> list[Scenario]:
    scenarios = []
    for index, event in enumerate(ctx.events):
        for shift, scale in EVENT_VARIANTS if options.event_variants else EVENT_VARIANTS[:1]:
            variant = event.shifted(shift, scale)
            start = variant.start_on(grid.start)
            if start < grid.start or start + np.timedelta64(event.active_period.duration_minutes, "m") > grid.end:
                continue
            scenarios.append(
                Scenario(id=f"event-{variant.id}", kind="event", event_index=index, shift_minutes=shift, scale=scale)
            )
    scenarios += [Scenario(id=f"sample-{k}", kind="sample", sample=k) for k in range(options.samples)]
    if options.unavailable:
        scenarios += [Scenario(id=f"unavailable-{b}", kind="unavailable", device=b) for b in battery_ids]
    per_block = BLOCK_HOURS * 60 // grid.step_minutes
    windows: list[tuple[str, tuple[int, ...]]] = []
    if options.flexibility == "all":
        windows += [(f"slot-{t:02d}", (t,)) for t in range(grid.steps)]
    if options.flexibility in ("all", "blocks"):
        windows += [
            (f"block-{b:02d}", tuple(range(b * per_block, (b + 1) * per_block))) for b in range(grid.steps // per_block)
        ]
    directions: tuple[Literal["down", "up"], ...] = ("down", "up")
    for direction in directions:
        scenarios += [
            Scenario(id=f"flex-{direction}-{name}", kind="flex", direction=direction, steps=steps)
            for name, steps in windows
        ]
    if options.rolling:
        scenarios.append(Scenario(id="rolling-vs-perfect", kind="rolling"))
    return scenarios


@dataclass
class Night:
    """What the scenarios of a night share, and the two plans every report shows."""

    ctx: NightContext
    portfolio: Portfolio
    grid: TimeGrid
    plan: Schedule  # tomorrow with its events
    plan_problem: Problem
    no_event: Schedule  # tomorrow without events
    no_event_problem: Problem


def prepare_night(
    config_path: str | Path,
    date: dt.date,
    *,
    event_files: list[Path] | None = None,
    history_csv: Path | None = None,
    options: NightlyOptions = NightlyOptions(),
) -> Night:
    """Load events and history and plan tomorrow with and without its events (P50 forecast)."""
    config_path = Path(config_path)
    portfolio, profiles = load_inputs(str(config_path))
    grid = day_grid(portfolio, date)
    events = load_events(
        event_files if event_files is not None else default_event_files(config_path), portfolio_sites(portfolio), grid
    )
    quantile_source = options.inputs
    forecast = p50_series(quantiles_for(quantile_source, str(config_path), grid))
    no_event_problem = day_problem(portfolio, profiles, grid.start, forecast)
    no_event = solve(no_event_problem)
    dr_days = frozenset(options.dr_days)
    if history_csv is not None:
        history, flagged = history_from_csv(Path(history_csv), date, portfolio.portfolio.timezone)
        dr_days |= flagged
    elif events:
        history = history_from_plans(
            str(config_path), date, options.seed, quantile_source, dr_days, starts_before_midnight(events, grid)
        )
    else:
        history = {}  # only events need a baseline
    ctx = NightContext(
        config_path=str(config_path),
        date=date,
        seed=options.seed,
        events=events,
        history_kw=history,
        no_event_site_kw={
            s: [float(v) for v in kw] for s, kw in site_net_import_kw(no_event, no_event_problem).items()
        },
        no_event_objective_yen=no_event.objective_yen,
        quantile_source=quantile_source,
        replan_steps=options.replan_steps,
        dr_days=tuple(sorted(dr_days)),
    )
    plan_problem = day_problem(portfolio, profiles, grid.start, forecast, dr_events=all_event_specs(ctx, events, grid))
    return Night(ctx, portfolio, grid, solve(plan_problem), plan_problem, no_event, no_event_problem)


def run_nightly(
    config_path: str | Path,
    date: dt.date,
    out_dir: str | Path,
    *,
    event_files: list[Path] | None = None,
    history_csv: Path | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    options: NightlyOptions = NightlyOptions(),
    progress: bool = True,
) -> dict:
    """Run the night for ``date`` into ``out_dir`` (report.html, kpis.json, plan/, scenarios/);
    return the KPIs. Rerun into the same directory to resume after a crash."""
    from simulations.report import build_kpis, write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    night = prepare_night(config_path, date, event_files=event_files, history_csv=history_csv, options=options)
    ctx, portfolio = night.ctx, night.portfolio
    write_schedule(
        night.plan,
        night.plan_problem,
        out / "plan",
        {"start": night.grid.start.isoformat()},
        timezone=portfolio.portfolio.timezone,
    )
    scenarios = night_scenarios(ctx, night.grid, [b.id for b in portfolio.batteries], options)
    store = ResultStore(out / "scenarios", ctx.fingerprint())
    sweep = run_sweep(ctx, scenarios, store, workers=workers, scheduler=scheduler, progress=progress)
    log.info(
        "sweep: %d scenarios (%d run now) in %.1f s on %d workers",
        len(scenarios),
        len(sweep.computed),
        sweep.elapsed_s,
        sweep.workers,
    )

    figures = build_kpis(ctx, portfolio, night.plan, night.plan_problem, night.no_event, night.no_event_problem, sweep)
    (out / "kpis.json").write_text(json.dumps(figures, indent=2, default=str))
    write_report(out / "report.html", figures, ctx, portfolio, night.plan, night.plan_problem, sweep)
    return figures


def night_date(now: dt.datetime, timezone: str) -> dt.date:
    """The day a run at ``now`` simulates: the day after ``now``'s local date."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return pd.Timestamp(now).tz_convert(timezone).date() + dt.timedelta(days=1)


def nightly_job(config_path: str | Path, out_root: str | Path, now: dt.datetime, **kwargs) -> dict:
    """What the controller's scheduler runs each night (default :data:`DEFAULT_RUN_AT`): the day
    after ``now``'s local date, into ``out_root/<date>`` (resumed if that directory has results).
    The clock is the caller's: ``now`` must be timezone-aware."""
    portfolio, _profiles = load_inputs(str(config_path))
    day = night_date(now, portfolio.portfolio.timezone)
    return run_nightly(config_path, day, Path(out_root) / day.isoformat(), progress=False, **kwargs)


def portfolio_sites(portfolio) -> tuple[str, ...]:
    return tuple(s.id for s in portfolio.sites)


__all__ = ["DEFAULT_RUN_AT", "HistoryError", "NightlyOptions", "kpis", "nightly_job", "run_nightly"]
