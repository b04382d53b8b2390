"""Rule-based schedule: the baseline a plan is compared to, and the fallback when a solve fails.

Rules, per site and step (each kind's part lives in its component, run in registry order): PV
runs at its forecast (curtailed only past the export limit); EVs charge at full power from
plug-in until full, never discharge; flexible loads draw at full power from their window's
opening until their energy is in; batteries self-consume (charge from surplus, discharge to
cover the deficit, never below their BCP reserve); the grid takes the rest within its limits:
past the import limit (0 in an outage) flexible loads wait first, then EV charging is cut, then
load is left unserved (ordinary loads before shelter loads); past the export limit PV is
curtailed, curtailable arrays first, then the others (as their grid protection would).
"""

from __future__ import annotations

import pandas as pd

from ems.optimise.components.base import RuleState, SiteStep
from ems.optimise.problem import Problem
from ems.optimise.registry import COMPONENTS

# the order in which kinds give way when a site would draw past its import limit
_IMPORT_RELIEF = sorted(
    (c for c in COMPONENTS if c.import_relief_rank is not None), key=lambda c: c.import_relief_rank or 0
)


def rule_based_power(problem: Problem) -> pd.DataFrame:
    """Per step: every kind says what it wants (``rule_begin_step``, ``rule_demand``), storage
    answers the site's deficit (``rule_balance``), the kinds give way past the import limit in
    their relief order and past the export limit, and the grid takes the rest."""
    state = RuleState(problem=problem, power={})
    for component in COMPONENTS:
        component.rule_start(state)
    grid_of = {g.site: g for g in problem.grids}
    for t in range(problem.grid.steps):
        for component in COMPONENTS:
            component.rule_begin_step(state, t)
        for site in problem.sites:
            grid = grid_of[site]
            step = SiteStep(site=site, t=t, grid=grid)
            for component in COMPONENTS:
                component.rule_demand(state, step)
            for component in COMPONENTS:
                component.rule_balance(state, step)
            import_limit = grid.import_limit_kw if grid.available else 0.0
            for component in _IMPORT_RELIEF:
                if step.deficit_kw > import_limit:
                    step.deficit_kw -= component.rule_relieve_import(state, step, step.deficit_kw - import_limit)
            export_limit = grid.export_limit_kw if grid.available else 0.0
            curtail = max(0.0, -step.deficit_kw - export_limit)
            relieved = 0.0
            for component in COMPONENTS:  # every kind hears it, even at 0 (PV sets its output here)
                relieved += component.rule_relieve_export(state, step, curtail - relieved)
            state.power[grid.id][t] = step.deficit_kw + relieved
        for component in COMPONENTS:
            component.rule_end_step(state, t)
    return pd.DataFrame(state.power, index=problem.grid.index)
