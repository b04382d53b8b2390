"""The most power a portfolio can shed ("down") or absorb ("up") over a set of steps.

Pure, like :func:`ems.optimise.solve`: the schedule model of the problem with one more
variable and one constraint per step of the window::

    net_import_kw[t] = sum over sites of (import_kw - export_kw)[t]
    down:  net_import_kw[t] <= reference_kw[t] - flex_kw     for t in steps   (``flex_window``)
    up:    net_import_kw[t] >= reference_kw[t] + flex_kw
    0 <= flex_kw <= flex_limit_kw

and the objective ``schedule objective - reward_yen_per_kw * flex_kw``. The reward is far above
any price, so the solve finds the largest constant ``flex_kw`` first and, among plans that
deliver it, the cheapest. The soft constraints of the schedule (EV departure targets, driving
energy, BCP reserves, unserved load, a flexible load's daily energy) get penalties above the
reward, so flexibility is never bought by breaking them. Its cost is the schedule objective
(priced with the caller's problem) minus the reference plan's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition

from ems.optimise.evaluate import evaluate
from ems.optimise.model import build_model
from ems.optimise.problem import Problem, ProblemError
from ems.optimise.solve import _highs, read_power

REWARD_YEN_PER_KW = 1e5
HARD_PENALTY_YEN_PER_KWH = 1e6


@dataclass(frozen=True)
class FlexibilityResult:
    direction: Literal["down", "up"]
    steps: tuple[int, ...]
    flex_kw: float  # constant power shed or absorbed over every step of the window [kW]
    objective_yen: float  # the schedule objective of the flexible plan, priced with the caller's problem
    net_import_kw: np.ndarray  # portfolio net import per step of the flexible plan
    status: str


def net_import_limits_kw(problem: Problem) -> tuple[float, float]:
    """(lowest, highest) portfolio net import any plan could reach [kW]."""
    available = [g for g in problem.grids if g.available]
    return -sum(g.export_limit_kw for g in available), sum(g.import_limit_kw for g in available)


def solve_flexibility(
    problem: Problem, steps: Sequence[int], direction: Literal["down", "up"], reference_kw: np.ndarray
) -> FlexibilityResult:
    """Largest constant shed ("down") or absorption ("up") below/above ``reference_kw`` over ``steps``."""
    if direction not in ("down", "up"):
        raise ProblemError(f"flexibility: direction must be 'down' or 'up', not {direction!r}")
    steps = tuple(int(t) for t in steps)
    if not steps or min(steps) < 0 or max(steps) >= problem.grid.steps:
        raise ProblemError(f"flexibility: steps {steps} outside 0..{problem.grid.steps - 1}")
    hard = dataclasses.replace(
        problem.settings,
        ev_shortfall_penalty_yen_per_kwh=HARD_PENALTY_YEN_PER_KWH,
        bcp_shortfall_penalty_yen_per_kwh=HARD_PENALTY_YEN_PER_KWH,
        drive_shortfall_penalty_yen_per_kwh=HARD_PENALTY_YEN_PER_KWH,
        unserved_load_yen_per_kwh=HARD_PENALTY_YEN_PER_KWH,
    )
    # a further kind names its slack price shortfall_penalty_yen_per_kwh (docs/adding-an-asset-kind.md)
    assets = tuple(
        dataclasses.replace(cast(Any, spec), shortfall_penalty_yen_per_kwh=HARD_PENALTY_YEN_PER_KWH)
        if hasattr(spec, "shortfall_penalty_yen_per_kwh")
        else spec
        for spec in problem.assets
    )
    hard_problem = dataclasses.replace(problem, settings=hard, assets=assets)
    window = np.zeros(problem.grid.steps, dtype=bool)
    window[list(steps)] = True
    build = build_model(hard_problem, extra_binary_steps=window if direction == "up" else None)
    m = build.model
    lowest, highest = net_import_limits_kw(problem)
    limit = max(
        0.0, max((reference_kw[t] - lowest) if direction == "down" else (highest - reference_kw[t]) for t in steps)
    )
    m.flex_kw = pyo.Var(bounds=(0.0, limit))

    def window_rule(_m, t):
        net = pyo.quicksum(_m.grid_import_kw[g.id, t] - _m.grid_export_kw[g.id, t] for g in problem.grids)
        if direction == "down":
            return net <= float(reference_kw[t]) - _m.flex_kw
        return net >= float(reference_kw[t]) + _m.flex_kw

    m.flex_window = pyo.Constraint(list(steps), rule=window_rule)
    m.objective.deactivate()
    m.flex_objective = pyo.Objective(expr=m.objective.expr - REWARD_YEN_PER_KW * m.flex_kw, sense=pyo.minimize)
    solver = _highs(problem.settings)
    solver.set_instance(m)
    results = solver.solve(m)
    if results.best_feasible_objective is None:
        raise ProblemError(
            f"flexibility {direction} over steps {steps}: no feasible plan ({results.termination_condition.name})"
        )
    status = "optimal" if results.termination_condition == TerminationCondition.optimal else "time_limit"
    results.solution_loader.load_vars()
    power = read_power(build)
    terms, _report, _soc = evaluate(problem, power)
    net = sum(power[g.id].to_numpy() for g in problem.grids)
    return FlexibilityResult(
        direction=direction,
        steps=steps,
        flex_kw=float(pyo.value(m.flex_kw)),
        objective_yen=float(sum(terms.values())),
        net_import_kw=np.asarray(net),
        status=status,
    )
