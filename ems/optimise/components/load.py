"""Site load (and a shelter's load): a fixed demand drawn from the bus, of which a part may be
left unserved, at a high price, only where the grid alone could not carry it.

    load_kw[l,t] = -(demand_kw[l,t] - load_shed_kw[l,t])                          [kW]
    0 <= load_shed_kw[l,t] <= demand_kw[l,t]
        only in steps where the site's demand exceeds what its grid may import (the import
        limit, 0 in an outage); elsewhere the grid alone can always serve the load
    cost: unserved_load_yen_per_kwh x (1 + 0.01 x (T - t) / T) x load_shed_kw x dt   (``unserved_load_yen``)
        the 1 % more for earlier steps breaks the tie between hours: when storage cannot carry a
        whole outage, what it holds serves the load now and the shedding comes last (the grid or
        the sun may be back by then), rather than in whichever steps the solver happens to pick

Unserved load is the last resort: its price is above every other penalty, so the plan first
uses storage, cuts EV charging and discharges vehicles where allowed.
"""

from __future__ import annotations

from collections.abc import Iterable

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
    frame_rows,
    var_values,
)
from ems.optimise.problem import LoadSpec, Problem, ProblemError

EARLIER_SHED_WEIGHT = 0.01  # a kWh left unserved now costs up to 1 % more than one at the horizon's end


def shed_steps(problem: Problem, site: str) -> np.ndarray:
    """Steps (bool) where the site's demand exceeds what its grid may import."""
    demand = sum((ld.demand_kw for ld in problem.loads if ld.site == site), np.zeros(problem.grid.steps))
    grid = next(g for g in problem.grids if g.site == site)
    return demand > (grid.import_limit_kw if grid.available else 0.0) + 1e-9


def add_load_constraints(build: ModelBuild) -> None:
    problem, dt_h = build.problem, build.step_h
    sheddable = {site: shed_steps(problem, site) for site in problem.sites}
    index = [(ld.id, t) for ld in problem.loads for t in build.steps if sheddable[ld.site][t] and ld.demand_kw[t] > 0]
    demand = {(ld.id, t): float(ld.demand_kw[t]) for ld in problem.loads for t in build.steps}
    build.model.load_shed_kw = pyo.Var(index, bounds=lambda _m, load_id, t: (0.0, demand[load_id, t]))
    site_of = {ld.id: ld.site for ld in problem.loads}
    for load in problem.loads:
        for t in build.steps:
            build.bus_constant_kw[(load.site, t)] -= float(load.demand_kw[t])
    price = problem.settings.unserved_load_yen_per_kwh * dt_h
    steps = problem.grid.steps
    for load_id, t in index:
        build.into_bus(site_of[load_id], t, 1.0, build.model.load_shed_kw[load_id, t])
        build.cost(
            "unserved_load_yen",
            price * (1.0 + EARLIER_SHED_WEIGHT * (steps - t) / steps),
            build.model.load_shed_kw[load_id, t],
        )


def load_shed_kw(problem: Problem, power_kw: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per site, the load left unserved in each step [kW]: demand minus the load's power drawn."""
    shed = {site: np.zeros(problem.grid.steps) for site in problem.sites}
    for load, drawn in zip(problem.loads, frame_rows(power_kw, [ld.id for ld in problem.loads]), strict=True):
        shed[load.site] += np.clip(load.demand_kw + drawn, 0, None)
    return shed


class LoadComponent(Component):
    """Rule-based: the demand is drawn; past the import limit, once everything that can wait has
    been cut, load is left unserved (ordinary loads before shelter loads)."""

    kind = "load"
    objective_terms = ("unserved_load_yen",)
    import_relief_rank = 90  # the last resort

    def specs(self, problem: Problem) -> tuple:
        return problem.loads

    def specs_from_portfolio(self, inputs: PortfolioInputs) -> tuple:
        """Demand: the forecast, else the profile (peak 1.0) times ``peak_kw``. Never left out:
        a load that stopped answering still draws."""
        return tuple(
            LoadSpec(ld.id, ld.site, inputs.series(ld.id, ld.profile, ld.peak_kw)) for ld in inputs.portfolio.loads
        )

    def validate(self, problem: Problem, check_series: SeriesCheck) -> None:
        for load in problem.loads:
            if load.site not in problem.sites:
                raise ProblemError(f"{load.id}: site {load.site!r} is not in the problem")
            check_series(load.id, "demand_kw", load.demand_kw, nonnegative=True)

    def build(self, build: ModelBuild) -> None:
        add_load_constraints(build)

    def read_power(self, build: ModelBuild) -> dict[str, np.ndarray]:
        loads = build.problem.loads
        shed = np.zeros((len(loads), len(build.steps)))  # shed variables exist only where shedding can happen
        row = {load.id: i for i, load in enumerate(loads)}
        for (load_id, t), kw in var_values(build.model.load_shed_kw).items():
            shed[row[load_id], t] = kw
        return {load.id: shed[i] - load.demand_kw.astype(float) for i, load in enumerate(loads)}

    def evaluate(self, problem: Problem, power_kw: pd.DataFrame, ledger: Evaluation) -> None:
        shed_kwh = float(sum(shed.sum() for shed in load_shed_kw(problem, power_kw).values()) * problem.grid.step_h)
        ledger.report.load_shed_total_kwh = shed_kwh
        ledger.terms["unserved_load_yen"] = problem.settings.unserved_load_yen_per_kwh * shed_kwh

    def rule_start(self, state: RuleState) -> None:
        state.power |= {load.id: -load.demand_kw.astype(float) for load in state.problem.loads}

    def rule_demand(self, state: RuleState, step: SiteStep) -> None:
        step.deficit_kw += sum(float(ld.demand_kw[step.t]) for ld in state.problem.loads if ld.site == step.site)

    def rule_relieve_import(self, state: RuleState, step: SiteStep, excess_kw: float) -> float:
        shed_total = 0.0
        for load in sorted(
            (ld for ld in state.problem.loads if ld.site == step.site), key=lambda ld: ld.kind == "shelter_load"
        ):
            cut = min(float(load.demand_kw[step.t]), excess_kw - shed_total)
            state.power[load.id][step.t] += cut
            shed_total += cut
        return shed_total

    def schedule_rows(self, problem: Problem, soc_kwh: pd.DataFrame) -> Iterable[ScheduleRows]:
        return [ScheduleRows(load.id, load.kind, load.site) for load in problem.loads]
