"""The schedule optimiser: a pure function from a Problem to a Schedule (Pyomo on HiGHS)."""

from ems.optimise.problem import (
    BatterySpec,
    DrEventSpec,
    EvSpec,
    GridSpec,
    LoadSpec,
    Problem,
    ProblemError,
    PvSpec,
    SolverSettings,
    TimeGrid,
)
from ems.optimise.report import PlanReport
from ems.optimise.schedule import Schedule, write_schedule
from ems.optimise.solve import fallback_schedule, solve

__all__ = [
    "BatterySpec",
    "DrEventSpec",
    "EvSpec",
    "GridSpec",
    "LoadSpec",
    "PlanReport",
    "Problem",
    "ProblemError",
    "PvSpec",
    "Schedule",
    "SolverSettings",
    "TimeGrid",
    "fallback_schedule",
    "solve",
    "write_schedule",
]
