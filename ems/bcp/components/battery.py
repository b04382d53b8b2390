"""Stationary battery at a shelter's site: it feeds that shelter's critical load only.

    soc_kwh[b,t+1] = soc_kwh[b,t] + charge_efficiency * charge_kw[b,t] * dt
                                 - discharge_kw[b,t] / discharge_efficiency * dt   (``bcp_battery_soc_balance``)
    soc_kwh[b,0] = initial_soc_kwh;  soc_min_kwh <= soc_kwh <= soc_max_kwh
    0 <= charge_kw <= charge_max_kw;  0 <= discharge_kw <= discharge_max_kw
    discharge_kw - charge_kw enters the shelter bus                                 [kW]

In an outage the battery may go down to its normal-operation minimum: the BCP reserve is what
normal plans keep for this moment. It charges only from the shelter's PV (or a vehicle); losses
keep it from charging and discharging at once, so no binary is needed.

Terminal value: ``terminal_weight_kwh`` x soc_kwh[b,T] (the energy left at the outage's end).
Without it a kWh stored in the last hours is worth nothing, and PV at the end of the outage would
be curtailed rather than put into an empty battery; at 1 % of a served kWh it never wins over
serving the load.
"""

from __future__ import annotations

from ems.bcp.build import BcpBuild
from ems.optimise.build import add_storage


def add_battery_constraints(build: BcpBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    batteries = {b.id: b for b in problem.batteries}
    add_storage(m, "bcp_battery", batteries, problem.steps, dt_h)
    for b, spec in batteries.items():
        for t in build.steps:
            build.into_bus(spec.shelter_id, t, 1.0, m.bcp_battery_discharge_kw[b, t])
            build.into_bus(spec.shelter_id, t, -1.0, m.bcp_battery_charge_kw[b, t])
        build.value("terminal_value", problem.settings.terminal_weight_kwh, m.bcp_battery_soc_kwh[b, problem.steps])
