"""PV array: output follows the forecast and may be curtailed.

    0 <= pv_kw[p,t] <= available_kw[p,t]          (curtailable)
    pv_kw[p,t]  = available_kw[p,t]               (not curtailable: a constant on the bus)
"""

from __future__ import annotations

import pyomo.environ as pyo

from ems.optimise.build import ModelBuild


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
