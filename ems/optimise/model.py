"""Build the MILP from a :class:`Problem`: variables and constraints per component, then the objective.

Pure: no I/O, no clock. ``build_model(problem)`` returns the :class:`ModelBuild` whose
``model`` a solver can take.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from ems.optimise.build import ModelBuild, add_objective_terms, gc_paused
from ems.optimise.components import add_site_balance_constraints
from ems.optimise.components.grid import add_grid_exchange_cuts
from ems.optimise.problem import Problem
from ems.optimise.registry import COMPONENTS, OBJECTIVE_TERMS

__all__ = ["OBJECTIVE_TERMS", "build_model", "storage_binary_steps"]


def storage_binary_steps(problem: Problem) -> np.ndarray:
    """Steps where charging and discharging storage at once could lower the objective.

    Doing both at once only burns energy in losses. That pays only where consuming more energy
    at the bus is worth money: an effective import price at or below zero, a negative export
    price, an "up" demand-response event, or PV that cannot be curtailed pushing past the export
    limit. Everywhere else the LP relaxation already avoids it (the throughput tie-breaker covers
    exact ties), so no binary is needed there.
    """
    steps = problem.grid.steps
    need = np.zeros(steps, dtype=bool)
    for g in problem.grids:
        need |= g.effective_import_yen_per_kwh <= 0.0
        need |= g.export_price_yen_per_kwh < 0.0
    for event in problem.dr_events:
        if event.direction == "up":
            need |= event.active.astype(bool)
    for site in problem.sites:
        firm_pv = sum(
            (pv.available_kw for pv in problem.pvs if pv.site == site and not pv.curtailable), np.zeros(steps)
        )
        load = sum((ld.demand_kw for ld in problem.loads if ld.site == site), np.zeros(steps))
        export_limit = sum(g.export_limit_kw for g in problem.grids if g.site == site)
        need |= firm_pv - load > export_limit
    return need


def build_model(problem: Problem, extra_binary_steps: np.ndarray | None = None) -> ModelBuild:
    """``extra_binary_steps``: further steps where storage gets a charge/discharge binary (a
    caller that rewards absorbing energy there, as the flexibility curve does, needs them)."""
    problem.validate()
    with gc_paused():
        return _build(problem, extra_binary_steps)


def _build(problem: Problem, extra_binary_steps: np.ndarray | None) -> ModelBuild:
    binaries = storage_binary_steps(problem)
    if extra_binary_steps is not None:
        binaries = binaries | extra_binary_steps.astype(bool)
    build = ModelBuild(problem=problem, model=pyo.ConcreteModel(name="ems-schedule"), storage_binary_steps=binaries)
    for component in COMPONENTS:
        component.build(build)
    add_site_balance_constraints(build)
    add_grid_exchange_cuts(build)
    add_objective(build)
    return build


def add_objective(build: ModelBuild) -> None:
    """Minimise the sum of all booked terms [yen]; each term also kept as an Expression."""
    add_objective_terms(build.model, build.objective, build.objective_constant, OBJECTIVE_TERMS, pyo.minimize)
