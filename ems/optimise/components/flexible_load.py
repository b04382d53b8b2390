"""Flexible load: a load that needs an amount of energy each day, drawn whenever the plan likes
inside a daily window (``[[flexible_loads]]``: a water heater, a pump filling a tank).

    0 <= flexible_load_kw[f,t] <= power_max_kw[f,t]        (0 outside the window)
    sum over the steps of period k of flexible_load_kw[f,t] * dt
        + flexible_load_shortfall_kwh[f,k] = energy_kwh[f,k]                       (``flexible_load_energy``)
    flexible_load_shortfall_kwh >= 0
    -flexible_load_kw enters the site bus                                            [kW]

A period is one day's window inside the horizon. A window the horizon cuts (it opened before
the plan starts, or closes after it ends) owes the day's energy pro rata to the hours of the
window inside the horizon. Costs: ``shortfall_penalty_yen_per_kwh`` per kWh a period leaves
undelivered (``flexible_load_shortfall_yen``); the energy itself is priced at the grid.

Rule-based fallback: a timer, full power from the window's opening until the period's energy
is in; past the import limit it waits first (before EV charging is cut). Set-point: the planned
power of the load itself (negative, drawn); failsafe: its ``failsafe_kw`` (default off).

This module is the whole kind: the worked example of docs/adding-an-asset-kind.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.optimise.build import ModelBuild
from ems.optimise.components.base import (
    Component,
    Evaluation,
    PortfolioInputs,
    RuleState,
    ScheduleRows,
    SeriesCheck,
    SiteStep,
    var_values,
)
from ems.optimise.problem import Problem, ProblemError, TimeGrid

if TYPE_CHECKING:
    from ems.config.schema import FlexibleLoad, Portfolio


@dataclass(frozen=True)
class FlexibleLoadSpec:
    """``power_max_kw[t]``: most power drawn in step t (0 outside every window).
    ``periods``: (first step, end step (exclusive), energy owed in those steps [kWh])."""

    id: str
    site: str
    power_max_kw: np.ndarray
    periods: tuple[tuple[int, int, float], ...]
    shortfall_penalty_yen_per_kwh: float


def periods_on_grid(
    load: FlexibleLoad, grid: TimeGrid, timezone: str
) -> tuple[np.ndarray, tuple[tuple[int, int, float], ...]]:
    """The load's daily windows on the grid: power limit per step and (first, end, kWh) per
    window the horizon touches. A step belongs to a window when it starts inside it."""
    starts = grid.index.tz_convert(timezone)
    power = np.zeros(grid.steps)
    periods = []
    first_day = starts[0].date() - dt.timedelta(days=1)  # a window open at the start opened the day before
    for offset in range((starts[-1].date() - first_day).days + 1):
        day = first_day + dt.timedelta(days=offset)
        opens = pd.Timestamp(dt.datetime.combine(day, load.window_start)).tz_localize(timezone)
        closes = opens + pd.Timedelta(hours=load.window_hours)
        inside = np.flatnonzero((starts >= opens) & (starts < closes))
        if not len(inside):
            continue
        power[inside] = load.power_kw
        share = len(inside) * grid.step_h / load.window_hours
        periods.append((int(inside[0]), int(inside[-1]) + 1, load.energy_per_day_kwh * min(1.0, share)))
    return power, tuple(periods)


def add_flexible_load_constraints(build: ModelBuild, loads: Mapping[str, FlexibleLoadSpec]) -> None:
    m, dt_h = build.model, build.step_h
    index = [(f, t) for f, spec in loads.items() for t in build.steps if spec.power_max_kw[t] > 0]
    periods = {(f, k): period for f, spec in loads.items() for k, period in enumerate(spec.periods)}
    m.flexible_load_kw = pyo.Var(index, bounds=lambda _m, f, t: (0.0, float(loads[f].power_max_kw[t])))
    m.flexible_load_shortfall_kwh = pyo.Var(list(periods), bounds=(0.0, None))

    def energy(_m, f, k):
        first, end, kwh = periods[f, k]
        drawn = pyo.quicksum(
            _m.flexible_load_kw[f, t] * dt_h for t in range(first, end) if (f, t) in _m.flexible_load_kw
        )
        return drawn + _m.flexible_load_shortfall_kwh[f, k] == kwh

    m.flexible_load_energy = pyo.Constraint(list(periods), rule=energy)
    for f, t in index:
        build.into_bus(loads[f].site, t, -1.0, m.flexible_load_kw[f, t])
    for f, k in periods:
        build.cost(
            "flexible_load_shortfall_yen", loads[f].shortfall_penalty_yen_per_kwh, m.flexible_load_shortfall_kwh[f, k]
        )


def delivered_kwh(spec: FlexibleLoadSpec, power_kw: np.ndarray, dt_h: float) -> list[float]:
    """Energy drawn in each period of a schedule [kWh]."""
    return [float(-power_kw[first:end].sum() * dt_h) for first, end, _kwh in spec.periods]


class FlexibleLoadComponent(Component):
    kind = "flexible_load"
    spec_type = FlexibleLoadSpec
    objective_terms = ("flexible_load_shortfall_yen",)
    import_relief_rank = 5  # it can wait: the first to give way past the import limit

    def specs_from_portfolio(self, inputs: PortfolioInputs) -> tuple:
        specs = []
        for load in inputs.portfolio.flexible_loads:
            if load.id in inputs.unavailable:
                continue
            power, periods = periods_on_grid(load, inputs.grid, inputs.timezone)
            specs.append(FlexibleLoadSpec(load.id, load.site, power, periods, load.shortfall_penalty_yen_per_kwh))
        return tuple(specs)

    def validate(self, problem: Problem, check_series: SeriesCheck) -> None:
        for spec in self.specs(problem):
            if spec.site not in problem.sites:
                raise ProblemError(f"{spec.id}: site {spec.site!r} is not in the problem")
            check_series(spec.id, "power_max_kw", spec.power_max_kw, nonnegative=True)
            for first, end, kwh in spec.periods:
                if not 0 <= first < end <= problem.grid.steps:
                    raise ProblemError(f"{spec.id}: period {first}..{end} outside the horizon")
                if kwh > spec.power_max_kw[first:end].sum() * problem.grid.step_h + 1e-9:
                    raise ProblemError(f"{spec.id}: {kwh:g} kWh cannot be drawn in steps {first}..{end}")

    def build(self, build: ModelBuild) -> None:
        add_flexible_load_constraints(build, {spec.id: spec for spec in self.specs(build.problem)})

    def read_power(self, build: ModelBuild) -> dict[str, np.ndarray]:
        values = var_values(build.model.flexible_load_kw)
        return {
            spec.id: -np.array([values.get((spec.id, t), 0.0) for t in build.steps])
            for spec in self.specs(build.problem)
        }

    def evaluate(self, problem: Problem, power_kw: pd.DataFrame, ledger: Evaluation) -> None:
        for spec in self.specs(problem):
            drawn = delivered_kwh(spec, power_kw[spec.id].to_numpy(), problem.grid.step_h)
            short = sum(max(0.0, kwh - got) for (_first, _end, kwh), got in zip(spec.periods, drawn))
            ledger.terms["flexible_load_shortfall_yen"] += spec.shortfall_penalty_yen_per_kwh * short
            ledger.report.add("flexible_load_kwh", float(-power_kw[spec.id].to_numpy().sum() * problem.grid.step_h))
            ledger.report.add("flexible_load_shortfall_kwh", short)

    def rule_start(self, state: RuleState) -> None:
        specs = self.specs(state.problem)
        state.power |= {spec.id: np.zeros(state.problem.grid.steps) for spec in specs}
        state.carry["flexible_load_owed_kwh"] = {
            (spec.id, k): kwh for spec in specs for k, (_f, _e, kwh) in enumerate(spec.periods)
        }
        state.carry["flexible_load_kw"] = {}

    def _period(self, spec: FlexibleLoadSpec, t: int) -> int | None:
        return next((k for k, (first, end, _kwh) in enumerate(spec.periods) if first <= t < end), None)

    def rule_demand(self, state: RuleState, step: SiteStep) -> None:
        owed, draw = state.carry["flexible_load_owed_kwh"], state.carry["flexible_load_kw"]
        for spec in self.specs(state.problem):
            if spec.site != step.site:
                continue
            k = self._period(spec, step.t)
            draw[spec.id] = (
                0.0 if k is None else min(float(spec.power_max_kw[step.t]), max(0.0, owed[spec.id, k]) / state.dt_h)
            )
            step.deficit_kw += draw[spec.id]

    def rule_relieve_import(self, state: RuleState, step: SiteStep, excess_kw: float) -> float:
        draw, relieved = state.carry["flexible_load_kw"], 0.0
        for spec in self.specs(state.problem):
            if spec.site == step.site:
                cut = min(draw.get(spec.id, 0.0), excess_kw - relieved)
                draw[spec.id] = draw.get(spec.id, 0.0) - cut
                relieved += cut
        return relieved

    def rule_end_step(self, state: RuleState, t: int) -> None:
        owed, draw = state.carry["flexible_load_owed_kwh"], state.carry["flexible_load_kw"]
        for spec in self.specs(state.problem):
            kw = draw.pop(spec.id, 0.0)
            state.power[spec.id][t] = -kw
            k = self._period(spec, t)
            if k is not None:
                owed[spec.id, k] -= kw * state.dt_h

    def schedule_rows(self, problem: Problem, soc_kwh: pd.DataFrame) -> Iterable[ScheduleRows]:
        return [ScheduleRows(spec.id, self.kind, spec.site) for spec in self.specs(problem)]

    def writable_devices(self, portfolio: Portfolio) -> set[str]:
        return {load.id for load in portfolio.flexible_loads}

    def setpoints_kw(
        self, row: pd.Series | None, devices: set[str], plugged: Mapping[str, str | None]
    ) -> dict[str, float]:
        return {f: (float(row[f]) if row is not None and f in row else 0.0) for f in devices}

    def failsafe_kw(self, portfolio: Portfolio, device: str) -> float | None:
        return next((load.failsafe_kw for load in portfolio.flexible_loads if load.id == device), None)
