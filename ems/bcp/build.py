"""Shared state while the BCP MILP is built: the model, the shelter bus ledger, objective terms."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pyomo.environ as pyo

from ems.bcp.problem import BcpProblem

# Terms of the objective (maximised), each in kWh-equivalent; see docs/bcp.md.
OBJECTIVE_TERMS = (
    "served_weighted_kwh",
    "earliness_value",
    "vehicle_call_cost",
    "drive_cost",
    "dwell_cost",
    "service_value",
    "terminal_value",
)


@dataclass
class BcpBuild:
    problem: BcpProblem
    model: pyo.ConcreteModel
    bus: dict = field(default_factory=lambda: defaultdict(list))  # (shelter, t) -> [(coef, var)], + into the bus
    objective: dict = field(default_factory=lambda: defaultdict(list))  # term -> [(coef, var)], maximised

    @property
    def steps(self) -> range:
        return range(self.problem.steps)

    @property
    def step_h(self) -> float:
        return self.problem.step_h

    def into_bus(self, shelter: str, t: int, coef: float, var) -> None:
        self.bus[(shelter, t)].append((coef, var))

    def value(self, term: str, coef: float, var) -> None:
        if term not in OBJECTIVE_TERMS:
            raise ValueError(f"objective term {term!r} is not in OBJECTIVE_TERMS")
        if coef != 0.0:
            self.objective[term].append((coef, var))
