"""Energy balance of every site's bus, every step (generator view, docs/architecture.md, Contracts):

    sum over the site's assets of power_kw[a,t] = 0        [kW]

Constraint: ``site_balance[site, t]``.
"""

from __future__ import annotations

import pyomo.environ as pyo

from ems.optimise.build import ModelBuild, linear_sum


def add_site_balance_constraints(build: ModelBuild) -> None:
    index = [(site, t) for site in build.problem.sites for t in build.steps]

    def rule(_m, site, t):
        terms = build.bus.get((site, t), [])
        constant = build.bus_constant_kw.get((site, t), 0.0)
        if not terms:
            if abs(constant) > 1e-9:
                raise_infeasible(site, t, constant)
            return pyo.Constraint.Skip
        return linear_sum(terms, constant) == 0.0

    build.model.site_balance = pyo.Constraint(index, rule=rule)


def raise_infeasible(site: str, t: int, constant: float) -> None:
    from ems.optimise.problem import ProblemError

    raise ProblemError(f"site {site!r}, step {t}: {constant:+.2f} kW must be balanced but nothing there can move")
