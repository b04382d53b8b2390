"""Stationary battery at a shelter's site: it feeds that shelter's critical load only.

    soc_kwh[b,t+1] = soc_kwh[b,t] + charge_efficiency * charge_kw[b,t] * dt
                                 - discharge_kw[b,t] / discharge_efficiency * dt   (``bcp_battery_soc_balance``)
    soc_kwh[b,0] = initial_soc_kwh;  soc_min_kwh <= soc_kwh <= soc_max_kwh
    0 <= charge_kw <= charge_max_kw;  0 <= discharge_kw <= discharge_max_kw
    discharge_kw - charge_kw enters the shelter bus                                 [kW]

In an outage the battery may go down to its normal-operation minimum: the BCP reserve is what
normal plans keep for this moment. It charges only from the shelter's PV (or a vehicle); losses
keep it from charging and discharging at once, so no binary is needed.
"""

from __future__ import annotations

import pyomo.environ as pyo

from ems.bcp.build import BcpBuild


def add_battery_constraints(build: BcpBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    batteries = {b.id: b for b in problem.batteries}
    power_index = [(b, t) for b in batteries for t in build.steps]
    soc_index = [(b, t) for b in batteries for t in range(problem.steps + 1)]

    def soc_bounds(_m, b, t):
        spec = batteries[b]
        return (min(spec.soc_min_kwh, spec.initial_soc_kwh), max(spec.soc_max_kwh, spec.initial_soc_kwh))

    m.bcp_battery_charge_kw = pyo.Var(power_index, bounds=lambda _m, b, t: (0.0, batteries[b].charge_max_kw))
    m.bcp_battery_discharge_kw = pyo.Var(power_index, bounds=lambda _m, b, t: (0.0, batteries[b].discharge_max_kw))
    m.bcp_battery_soc_kwh = pyo.Var(soc_index, bounds=soc_bounds)
    for b, spec in batteries.items():
        m.bcp_battery_soc_kwh[b, 0].fix(spec.initial_soc_kwh)
    m.bcp_battery_soc_balance = pyo.Constraint(power_index, rule=lambda _m, b, t: _m.bcp_battery_soc_kwh[b, t + 1] == (
        _m.bcp_battery_soc_kwh[b, t]
        + batteries[b].charge_efficiency * dt_h * _m.bcp_battery_charge_kw[b, t]
        - dt_h / batteries[b].discharge_efficiency * _m.bcp_battery_discharge_kw[b, t]
    ))
    for b, spec in batteries.items():
        for t in build.steps:
            build.into_bus(spec.shelter_id, t, 1.0, m.bcp_battery_discharge_kw[b, t])
            build.into_bus(spec.shelter_id, t, -1.0, m.bcp_battery_charge_kw[b, t])
