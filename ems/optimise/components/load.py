"""Site load (and a shelter's load): a fixed demand drawn from the bus.

    load_kw[l,t] = -demand_kw[l,t]      (a constant; loads are not controlled)
"""

from __future__ import annotations

from ems.optimise.build import ModelBuild


def add_load_constraints(build: ModelBuild) -> None:
    for load in build.problem.loads:
        for t in build.steps:
            build.bus_constant_kw[(load.site, t)] -= float(load.demand_kw[t])
