"""Shared state while the MILP is built: the model, the bus ledger and the objective terms.

Each component function adds its variables and constraints to ``model`` and books its power
into ``bus`` (per site and step, positive into the bus) and its costs into ``objective``.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

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

    def costs(self, term: str, coef: float, variables: list) -> None:
        """``cost`` for each of ``variables`` at one coefficient."""
        if coef != 0.0 and variables:
            self.objective[term].extend(zip(repeat(coef), variables))


def add_exclusive_flows(
    model: pyo.ConcreteModel, prefix: str, index: list, first, first_max, second, second_max
) -> None:
    """Two flows that may not both be positive in one step, with a binary ``<prefix>_on``:

        first[k]  <= first_max(k) * on[k]
        second[k] <= second_max(k) * (1 - on[k])

    Constraints ``<prefix>_first`` and ``<prefix>_second``; limits are callables of the key.
    """
    on = pyo.Var(index, domain=pyo.Binary)
    setattr(model, f"{prefix}_on", on)
    setattr(model, f"{prefix}_first", pyo.Constraint(index, rule=lambda _m, *k: first[k] <= first_max(k) * on[k]))
    setattr(
        model, f"{prefix}_second", pyo.Constraint(index, rule=lambda _m, *k: second[k] <= second_max(k) * (1 - on[k]))
    )


def add_storage(model: pyo.ConcreteModel, prefix: str, storage: dict, steps: int, dt_h: float) -> None:
    """Charge, discharge and energy of stationary storage, ``storage``: id -> spec with
    ``charge_max_kw``, ``discharge_max_kw``, ``soc_min_kwh``, ``soc_max_kwh``, ``initial_soc_kwh``,
    ``charge_efficiency`` and ``discharge_efficiency``:

        <prefix>_soc_kwh[s,t+1] = <prefix>_soc_kwh[s,t] + charge_efficiency * <prefix>_charge_kw[s,t] * dt
                                  - <prefix>_discharge_kw[s,t] / discharge_efficiency * dt    (``<prefix>_soc_balance``)
        <prefix>_soc_kwh[s,0] = initial; bounds widened to include the initial energy
    """
    power_index = [(s, t) for s in storage for t in range(steps)]
    soc_index = [(s, t) for s in storage for t in range(steps + 1)]

    def soc_bounds(_m, s, t):
        spec = storage[s]
        return (min(spec.soc_min_kwh, spec.initial_soc_kwh), max(spec.soc_max_kwh, spec.initial_soc_kwh))

    charge = pyo.Var(power_index, bounds=lambda _m, s, t: (0.0, storage[s].charge_max_kw))
    discharge = pyo.Var(power_index, bounds=lambda _m, s, t: (0.0, storage[s].discharge_max_kw))
    soc = pyo.Var(soc_index, bounds=soc_bounds)
    setattr(model, f"{prefix}_charge_kw", charge)
    setattr(model, f"{prefix}_discharge_kw", discharge)
    setattr(model, f"{prefix}_soc_kwh", soc)
    for s, spec in storage.items():
        soc[s, 0].fix(spec.initial_soc_kwh)
    setattr(
        model,
        f"{prefix}_soc_balance",
        pyo.Constraint(
            power_index,
            rule=lambda _m, s, t: (
                soc[s, t + 1]
                == (
                    soc[s, t]
                    + storage[s].charge_efficiency * dt_h * charge[s, t]
                    - dt_h / storage[s].discharge_efficiency * discharge[s, t]
                )
            ),
        ),
    )


def linear_sum(terms: list, constant: float = 0.0) -> LinearExpression:
    """``sum(coef * var) + constant`` of (coef, var) pairs, built as one Pyomo ``LinearExpression``
    (operator overloading would make a new expression object per term)."""
    args: list = [var if coef == 1 else MonomialTermExpression((coef, var)) for coef, var in terms]
    if constant != 0:
        args.append(constant)
    return LinearExpression(args)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Building or walking a model makes many small objects and no garbage cycles; Python's
    cyclic collector, run every few hundred of them, took over half of a city-scale build."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def add_objective_terms(model: pyo.ConcreteModel, terms: dict, constants: dict, names: tuple[str, ...], sense) -> None:
    """``objective_term[name]`` = the sum of each booked (coef, var) of the term plus its constant,
    and ``objective`` = their sum, minimised or maximised. A term not in ``names`` is an error."""
    unknown = set(terms) - set(names)
    if unknown:
        raise ValueError(f"objective terms not declared: {sorted(unknown)}")
    model.objective_term = pyo.Expression(
        list(names), rule=lambda _m, name: linear_sum(terms.get(name, []), constants.get(name, 0.0))
    )
    model.objective = pyo.Objective(expr=pyo.quicksum(model.objective_term[name] for name in names), sense=sense)
