"""Demand-response event on the net import of a set of sites.

    net_import_kw[t] = sum over the event's sites of (import_kw - export_kw)
    down:  net_import_kw[t] <= baseline_kw[t] - requested_kw + shortfall_kw[e,t] + beyond_kw[e,t]   (``dr_event``)
    up:    net_import_kw[t] >= baseline_kw[t] + requested_kw - shortfall_kw[e,t] - beyond_kw[e,t]
    0 <= shortfall_kw <= requested_kw,  beyond_kw >= 0

``beyond_kw`` is the part of a miss that lies past the baseline itself (a down event's sites
importing more than the baseline). Without it, a baseline the portfolio cannot get below (a
High 4 of 5 from days it planned differently) would make the whole plan infeasible. Settlement
stops counting at the full request, but a flat cost past it would make the model non-convex, so
``beyond_kw`` is priced like a shortfall (booked as ``dr_penalty_yen``); the schedule's reported
figures (``evaluate``) count the miss only up to the request.

Delivered energy (requested - shortfall) x dt earns the event price; the shortfall pays the
penalty. Net import (not gross) is measured, so importing and exporting at once cannot game it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.optimise.build import ModelBuild
from ems.optimise.components.base import Component, Evaluation, SeriesCheck
from ems.optimise.problem import Problem, ProblemError


def add_demand_response_constraints(build: ModelBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    events = {e.id: e for e in problem.dr_events}
    index = [(e.id, t) for e in problem.dr_events for t in build.steps if e.active[t]]
    m.dr_shortfall_kw = pyo.Var(index, bounds=lambda _m, e, t: (0.0, events[e].requested_kw))
    m.dr_beyond_kw = pyo.Var(index, bounds=(0.0, None))

    def rule(_m, e, t):
        event = events[e]
        net = pyo.quicksum(
            _m.grid_import_kw[g.id, t] - _m.grid_export_kw[g.id, t] for g in problem.grids if g.site in event.sites
        )
        if event.direction == "down":
            return (
                net
                <= float(event.baseline_kw[t]) - event.requested_kw + _m.dr_shortfall_kw[e, t] + _m.dr_beyond_kw[e, t]
            )
        return (
            net >= float(event.baseline_kw[t]) + event.requested_kw - _m.dr_shortfall_kw[e, t] - _m.dr_beyond_kw[e, t]
        )

    m.dr_event = pyo.Constraint(index, rule=rule)
    for e, t in index:
        event = events[e]
        # revenue for the full request is a constant; each kW short loses it and pays the penalty
        build.objective_constant["dr_revenue_yen"] -= event.price_yen_per_kwh * event.requested_kw * dt_h
        build.cost("dr_revenue_yen", event.price_yen_per_kwh * dt_h, m.dr_shortfall_kw[e, t])
        build.cost("dr_penalty_yen", event.penalty_yen_per_kwh * dt_h, m.dr_shortfall_kw[e, t])
        build.cost("dr_penalty_yen", (event.price_yen_per_kwh + event.penalty_yen_per_kwh) * dt_h, m.dr_beyond_kw[e, t])


class DemandResponseComponent(Component):
    """Events on the grid connections' net import: no power of their own, so no read-back,
    rule or set-point; ``evaluate`` settles each event on the plan's net import."""

    kind = "demand_response"
    objective_terms = ("dr_revenue_yen", "dr_penalty_yen")

    def validate(self, problem: Problem, check_series: SeriesCheck) -> None:
        for event in problem.dr_events:
            check_series(event.id, "baseline_kw", event.baseline_kw)
            if event.active.shape != (problem.grid.steps,):
                raise ProblemError(f"{event.id}: active mask has the wrong length")
            unknown = set(event.sites) - set(problem.sites)
            if unknown:
                raise ProblemError(f"{event.id}: unknown sites {sorted(unknown)}")

    def build(self, build: ModelBuild) -> None:
        add_demand_response_constraints(build)

    def evaluate(self, problem: Problem, power_kw: pd.DataFrame, ledger: Evaluation) -> None:
        dt_h, terms = problem.grid.step_h, ledger.terms
        for event in problem.dr_events:
            net = sum(power_kw[g.id].to_numpy() for g in problem.grids if g.site in event.sites)
            if event.direction == "down":
                short = net - (event.baseline_kw - event.requested_kw)
            else:
                short = (event.baseline_kw + event.requested_kw) - net
            short = np.clip(short, 0, event.requested_kw) * event.active
            delivered_kwh = float(((event.requested_kw - short) * event.active).sum() * dt_h)
            terms["dr_revenue_yen"] -= event.price_yen_per_kwh * delivered_kwh
            terms["dr_penalty_yen"] += event.penalty_yen_per_kwh * float(short.sum() * dt_h)
            ledger.report.dr_shortfall_kwh += float(short.sum() * dt_h)
