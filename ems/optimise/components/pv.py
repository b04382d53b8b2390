"""PV array: output follows the forecast and may be curtailed.

0 <= pv_kw[p,t] <= available_kw[p,t]          (curtailable)
pv_kw[p,t]  = available_kw[p,t]               (not curtailable: a constant on the bus)
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
    var_array,
)
from ems.optimise.problem import Problem, ProblemError, PvSpec


def add_pv_constraints(build: ModelBuild) -> None:
    m = build.model
    curtailable = [pv for pv in build.problem.pvs if pv.curtailable]
    index = [(pv.id, t) for pv in curtailable for t in build.steps]
    available = {(pv.id, t): float(pv.available_kw[t]) for pv in curtailable for t in build.steps}
    m.pv_kw = pyo.Var(index, bounds=lambda _m, p, t: (0.0, available[p, t]))
    for pv in build.problem.pvs:
        for t in build.steps:
            if pv.curtailable:
                build.into_bus(pv.site, t, 1.0, m.pv_kw[pv.id, t])
            else:
                build.bus_constant_kw[(pv.site, t)] += float(pv.available_kw[t])


class PvComponent(Component):
    """Rule-based: runs at its forecast; past the export limit the curtailable arrays are cut
    first, then the others (as their grid protection would)."""

    kind = "pv"

    def specs(self, problem: Problem) -> tuple:
        return problem.pvs

    def specs_from_portfolio(self, inputs: PortfolioInputs) -> tuple:
        """Available output: the forecast, else the profile per kWp times the capacity, clipped at the inverter."""
        return tuple(
            PvSpec(
                pv.id,
                pv.site,
                np.minimum(inputs.series(pv.id, pv.profile, pv.capacity_kwp), pv.inverter_limit_kw or np.inf),
                pv.curtailable,
            )
            for pv in inputs.portfolio.pv_arrays
            if pv.id not in inputs.unavailable
        )

    def validate(self, problem: Problem, check_series: SeriesCheck) -> None:
        for pv in problem.pvs:
            if pv.site not in problem.sites:
                raise ProblemError(f"{pv.id}: site {pv.site!r} is not in the problem")
            check_series(pv.id, "available_kw", pv.available_kw, nonnegative=True)

    def build(self, build: ModelBuild) -> None:
        add_pv_constraints(build)

    def read_power(self, build: ModelBuild) -> dict[str, np.ndarray]:
        curtailable = [pv.id for pv in build.problem.pvs if pv.curtailable]
        rows = dict(
            zip(curtailable, var_array(build.model.pv_kw, (len(curtailable), build.problem.grid.steps)), strict=True)
        )
        return {pv.id: rows[pv.id] if pv.curtailable else pv.available_kw.astype(float) for pv in build.problem.pvs}

    def evaluate(self, problem: Problem, power_kw: pd.DataFrame, ledger: Evaluation) -> None:
        dt_h = problem.grid.step_h
        for pv, out in zip(problem.pvs, frame_rows(power_kw, [pv.id for pv in problem.pvs]), strict=True):
            ledger.report.pv_kwh += float(out.sum() * dt_h)
            ledger.report.pv_curtailed_kwh += float((pv.available_kw - out).sum() * dt_h)

    def rule_start(self, state: RuleState) -> None:
        state.power |= {pv.id: np.zeros(state.problem.grid.steps) for pv in state.problem.pvs}

    def rule_demand(self, state: RuleState, step: SiteStep) -> None:
        step.deficit_kw -= sum(float(pv.available_kw[step.t]) for pv in state.problem.pvs if pv.site == step.site)

    def rule_relieve_export(self, state: RuleState, step: SiteStep, excess_kw: float) -> float:
        arrays = sorted((pv for pv in state.problem.pvs if pv.site == step.site), key=lambda pv: not pv.curtailable)
        curtail_kw = excess_kw
        for pv in arrays:
            available = float(pv.available_kw[step.t])
            cut = min(available, curtail_kw)
            state.power[pv.id][step.t] = available - cut
            curtail_kw -= cut
        return excess_kw - curtail_kw

    def schedule_rows(self, problem: Problem, soc_kwh: pd.DataFrame) -> Iterable[ScheduleRows]:
        return [ScheduleRows(pv.id, self.kind, pv.site) for pv in problem.pvs]
