"""Shelter: critical load served and PV at its site.

    0 <= served_kw[s,t] <= demand_kw[s,t]                                  (bounds)
    0 <= pv_used_kw[s,t] <= pv_kw[s,t]                                     (bounds)
    pv_used_kw - served_kw enters the shelter bus                          [kW]

Value: priority weight x served energy [kWh] x (1 + earliness), earliness = up_hour_weight x
(steps left after t) / steps. The small earliness premium makes the plan serve the first hours
fully before later ones, so a shelter stays up without a gap from the start of the outage for
as long as the energy allows ("hours up", the second goal) without a binary per step.
Priority weight of a shelter with priority p: ratio ** (lowest priority - p), so a kWh at
priority 1 outweighs ``ratio`` kWh at priority 2.
"""

from __future__ import annotations

import pyomo.environ as pyo

from ems.bcp.build import BcpBuild


def priority_weight(build: BcpBuild, priority: int) -> float:
    lowest = max(s.priority for s in build.problem.shelters)
    return build.problem.settings.priority_weight_ratio ** (lowest - priority)


def add_shelter_constraints(build: BcpBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    shelters = {s.id: s for s in problem.shelters}
    index = [(s, t) for s in shelters for t in build.steps]
    m.shelter_served_kw = pyo.Var(index, bounds=lambda _m, s, t: (0.0, float(shelters[s].demand_kw[t])))
    m.shelter_pv_used_kw = pyo.Var(index, bounds=lambda _m, s, t: (0.0, float(shelters[s].pv_kw[t])))
    earliness = problem.settings.up_hour_weight_kwh
    for s, spec in shelters.items():
        weight = priority_weight(build, spec.priority)
        for t in build.steps:
            build.into_bus(s, t, 1.0, m.shelter_pv_used_kw[s, t])
            build.into_bus(s, t, -1.0, m.shelter_served_kw[s, t])
            build.value("served_weighted_kwh", weight * dt_h, m.shelter_served_kw[s, t])
            build.value(
                "earliness_value",
                weight * dt_h * earliness * (problem.steps - t) / problem.steps,
                m.shelter_served_kw[s, t],
            )


def add_shelter_balance_constraints(build: BcpBuild) -> None:
    """Every shelter bus balances in every step: sum of powers into it = 0 (``shelter_balance``)."""
    m = build.model
    index = [(s.id, t) for s in build.problem.shelters for t in build.steps]
    m.shelter_balance = pyo.Constraint(
        index, rule=lambda _m, s, t: pyo.quicksum(c * v for c, v in build.bus[(s, t)]) == 0.0
    )
