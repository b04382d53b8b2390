"""Stationary battery.

    soc_kwh[b,t+1] = soc_kwh[b,t] + charge_efficiency * charge_kw[b,t] * dt
                                 - discharge_kw[b,t] / discharge_efficiency * dt   (``battery_soc_balance``)
    soc_kwh[b,0] = initial_soc_kwh;  soc_min_kwh <= soc_kwh <= soc_max_kwh
    0 <= charge_kw <= charge_max_kw,  0 <= discharge_kw <= discharge_max_kw
    discharge_kw - charge_kw enters the site bus                                   [kW]
    no simultaneous charge and discharge: a binary per step only where it can pay
      (``storage_binary_steps``); elsewhere losses and the throughput cost make the LP avoid it.
    BCP reserve: soc_kwh[b,t] + reserve_shortfall_kwh[b,t] >= reserve_kwh            (``battery_bcp_reserve``)

Costs: degradation per kWh discharged, a tiny throughput tie-breaker, the priced reserve
shortfall (per kWh and hour), and minus the terminal value of the energy left at the end.
"""

from __future__ import annotations

import pyomo.environ as pyo

from ems.optimise.build import ModelBuild, add_exclusive_flows, add_storage


def add_battery_constraints(build: ModelBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    settings = problem.settings
    batteries = {b.id: b for b in problem.batteries}
    steps = list(build.steps)
    add_storage(m, "battery", batteries, len(steps), dt_h)

    binary_index = [(b, t) for b in batteries for t in steps if build.storage_binary_steps[t]]
    add_exclusive_flows(m, "battery_charging", binary_index, m.battery_charge_kw, lambda k: batteries[k[0]].charge_max_kw,
                        m.battery_discharge_kw, lambda k: batteries[k[0]].discharge_max_kw)

    reserve_index = [(b, t) for b, s in batteries.items() if s.reserve_kwh > s.soc_min_kwh for t in range(1, len(steps) + 1)]
    m.battery_reserve_shortfall_kwh = pyo.Var(reserve_index, bounds=(0.0, None))
    m.battery_bcp_reserve = pyo.Constraint(
        reserve_index,
        rule=lambda _m, b, t: _m.battery_soc_kwh[b, t] + _m.battery_reserve_shortfall_kwh[b, t] >= batteries[b].reserve_kwh,
    )
    for key in reserve_index:
        build.cost("bcp_shortfall_yen", settings.bcp_shortfall_penalty_yen_per_kwh * dt_h, m.battery_reserve_shortfall_kwh[key])

    for b, spec in batteries.items():
        for t in steps:
            charge, discharge = m.battery_charge_kw[b, t], m.battery_discharge_kw[b, t]
            build.into_bus(spec.site, t, 1.0, discharge)
            build.into_bus(spec.site, t, -1.0, charge)
            build.cost("degradation_yen", spec.degradation_yen_per_kwh * dt_h, discharge)
            build.cost("throughput_epsilon_yen", settings.throughput_epsilon_yen_per_kwh * dt_h, charge)
            build.cost("throughput_epsilon_yen", settings.throughput_epsilon_yen_per_kwh * dt_h, discharge)
        build.cost("terminal_value_yen", -settings.terminal_value_yen_per_kwh, m.battery_soc_kwh[b, len(steps)])
        build.objective_constant["terminal_value_yen"] += settings.terminal_value_yen_per_kwh * spec.initial_soc_kwh
