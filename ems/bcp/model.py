"""Build the BCP MILP: one function per component, then the objective (maximised).

Objective [kWh-equivalent] = sum over shelters and steps of priority weight x critical energy
served, + a small value per shelter-hour fully up (counted from the start of the outage until
the first step a shelter is not fully served), - small costs per vehicle taken from the ride
service, per kWh driven and per vehicle-hour at a shelter. See docs/bcp.md.
"""

from __future__ import annotations

import pyomo.environ as pyo

from ems.bcp.build import OBJECTIVE_TERMS, BcpBuild
from ems.bcp.components.battery import add_battery_constraints
from ems.bcp.components.shelter import add_shelter_balance_constraints, add_shelter_constraints
from ems.bcp.components.vehicle import add_vehicle_constraints
from ems.bcp.problem import BcpProblem
from ems.optimise.build import add_objective_terms


def build_bcp_model(problem: BcpProblem) -> BcpBuild:
    problem.validate()
    build = BcpBuild(problem=problem, model=pyo.ConcreteModel(name="ems-bcp"))
    add_shelter_constraints(build)
    add_battery_constraints(build)
    add_vehicle_constraints(build)
    add_shelter_balance_constraints(build)
    add_objective(build)
    return build


def add_objective(build: BcpBuild) -> None:
    """Maximise the sum of all booked terms [kWh-equivalent]; each term also kept as an Expression."""
    add_objective_terms(build.model, build.objective, {}, OBJECTIVE_TERMS, pyo.maximize)
