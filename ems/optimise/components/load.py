"""Site load (and a shelter's load): a fixed demand drawn from the bus, of which a part may be
left unserved, at a high price, only where the grid alone could not carry it.

    load_kw[l,t] = -(demand_kw[l,t] - load_shed_kw[l,t])                          [kW]
    0 <= load_shed_kw[l,t] <= demand_kw[l,t]
        only in steps where the site's demand exceeds what its grid may import (the import
        limit, 0 in an outage); elsewhere the grid alone can always serve the load
    cost: unserved_load_yen_per_kwh x load_shed_kw x dt                          (``unserved_load_yen``)

Unserved load is the last resort: its price is above every other penalty, so the plan first
uses storage, cuts EV charging and discharges vehicles where allowed.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from ems.optimise.build import ModelBuild
from ems.optimise.problem import Problem


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
    for load_id, t in index:
        build.into_bus(site_of[load_id], t, 1.0, build.model.load_shed_kw[load_id, t])
        build.cost("unserved_load_yen", price, build.model.load_shed_kw[load_id, t])
