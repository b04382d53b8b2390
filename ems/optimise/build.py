"""Shared state while the MILP is built: the model, the bus ledger and the objective terms.

Each component function adds its variables and constraints to ``model`` and books its power
into ``bus`` (per site and step, positive into the bus) and its costs into ``objective``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from ems.optimise.problem import Problem


@dataclass
class ModelBuild:
    problem: Problem
    model: pyo.ConcreteModel
    storage_binary_steps: np.ndarray  # bool per step: charge/discharge exclusivity needs a binary
    bus: dict = field(default_factory=lambda: defaultdict(list))  # (site, t) -> [(coef, var)]
    bus_constant_kw: dict = field(default_factory=lambda: defaultdict(float))  # (site, t) -> kW
    objective: dict = field(default_factory=lambda: defaultdict(list))  # term name -> [(coef, var)]
    objective_constant: dict = field(default_factory=lambda: defaultdict(float))

    @property
    def steps(self) -> range:
        return range(self.problem.grid.steps)

    @property
    def step_h(self) -> float:
        return self.problem.grid.step_h

    def into_bus(self, site: str, t: int, coef: float, var) -> None:
        self.bus[(site, t)].append((coef, var))

    def cost(self, term: str, coef: float, var) -> None:
        if coef != 0.0:
            self.objective[term].append((coef, var))


def add_exclusive_flows(model: pyo.ConcreteModel, prefix: str, index: list, first, first_max, second, second_max) -> None:
    """Two flows that may not both be positive in one step, with a binary ``<prefix>_on``:

        first[k]  <= first_max(k) * on[k]
        second[k] <= second_max(k) * (1 - on[k])

    Constraints ``<prefix>_first`` and ``<prefix>_second``; limits are callables of the key.
    """
    on = pyo.Var(index, domain=pyo.Binary)
    setattr(model, f"{prefix}_on", on)
    setattr(model, f"{prefix}_first", pyo.Constraint(index, rule=lambda _m, *k: first[k] <= first_max(k) * on[k]))
    setattr(model, f"{prefix}_second", pyo.Constraint(index, rule=lambda _m, *k: second[k] <= second_max(k) * (1 - on[k])))
