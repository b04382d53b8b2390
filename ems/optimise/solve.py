"""Solve a :class:`Problem` with HiGHS: the Pyomo model compiled to matrices and passed to ``highspy``.

Build, hand-over, solve and read-back are separate and timed. On a time limit the best incumbent
is used; when the solver fails or finds nothing, the rule-based fallback provides the schedule.
"""

from __future__ import annotations

import functools
import logging
import time

import highspy
import numpy as np
import pandas as pd
from pyomo.contrib.appsi.solvers import Highs

from ems.optimise.build import ModelBuild
from ems.optimise.evaluate import evaluate, evaluate_ledger
from ems.optimise.highs_model import ColumnValues, LoadedModel, attach_solution, compile_model, load
from ems.optimise.model import build_model
from ems.optimise.problem import Problem
from ems.optimise.registry import COMPONENTS
from ems.optimise.rules import rule_based_power
from ems.optimise.schedule import Schedule
from ems.optimise.unserved import load_shed_kwh_by_site, unserved_message

log = logging.getLogger(__name__)


def _highs(settings) -> Highs:
    """Pyomo's persistent APPSI interface to HiGHS (the flexibility curve's route, which adds to a built model)."""
    solver = Highs()
    solver.config.time_limit = settings.time_limit_s
    solver.config.mip_gap = settings.mip_gap
    solver.config.load_solution = False
    solver.config.stream_solver = False
    # The model is handed over once by set_instance; skip APPSI's change detection on solve.
    for option in (
        "check_for_new_or_removed_constraints",
        "check_for_new_or_removed_vars",
        "check_for_new_or_removed_params",
        "check_for_new_objective",
        "update_constraints",
        "update_vars",
        "update_params",
        "update_named_expressions",
        "update_objective",
    ):
        setattr(solver.update_config, option, False)
    return solver


def solve(problem: Problem) -> Schedule:
    """Plan ``problem``; always returns a schedule (status says how it was obtained).

    Timed steps: ``build_s`` (Pyomo model), ``load_s`` (model compiled to matrices and passed to
    HiGHS), ``solve_s`` (HiGHS itself) and ``read_s`` (values read back and checked).
    """
    started = time.perf_counter()
    build = build_model(problem)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    try:
        loaded = load(compile_model(build.model))
    except RuntimeError as error:  # HiGHS reports a failed model load this way
        log.error("HiGHS failed: %s; using the rule-based fallback", error)
        return fallback_schedule(problem, f"solver error: {error}", build_s, time.perf_counter() - started)
    return run_highs(loaded, build, build_s, time.perf_counter() - started)


def run_highs(
    loaded: LoadedModel, build: ModelBuild, build_s: float, load_s: float, start: np.ndarray | None = None
) -> Schedule:
    """Run HiGHS on the loaded model (from ``start``, a value per column, for a MIP) and read the
    plan back from its solution vector; the fallback when it fails or finds nothing."""
    h, settings, problem = loaded.highs, build.problem.settings, build.problem
    h.setOptionValue("time_limit", float(settings.time_limit_s))
    h.setOptionValue("mip_rel_gap", float(settings.mip_gap))
    if start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = start
        solution.value_valid = True
        h.setSolution(solution)
    started = time.perf_counter()
    try:
        h.run()
    except RuntimeError as error:
        log.error("HiGHS failed: %s; using the rule-based fallback", error)
        return fallback_schedule(problem, f"solver error: {error}", build_s, time.perf_counter() - started)
    solve_s = time.perf_counter() - started
    model_status = h.getModelStatus()
    info = h.getInfo()
    feasible = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if model_status == highspy.HighsModelStatus.kOptimal and feasible:
        status = "optimal"
    elif model_status == highspy.HighsModelStatus.kTimeLimit and feasible:
        status = "time_limit"
    else:
        name = h.modelStatusToString(model_status)
        log.error("HiGHS ended with %s and no solution; using the rule-based fallback", name)
        return fallback_schedule(problem, f"solver ended with {name}", build_s, solve_s)
    started = time.perf_counter()
    columns = h.getSolution().col_value  # a list (np.fromiter converts it faster than np.asarray)
    attach_solution(build.model, ColumnValues(np.fromiter(columns, float, len(columns)), loaded.compiled.var_columns))
    best = float(info.objective_function_value)
    bound = float(info.mip_dual_bound) if loaded.integer else None
    return solved_schedule(build, status, best, bound, build_s, load_s, solve_s, started)


def solved_schedule(
    build: ModelBuild,
    status: str,
    best: float,
    bound: float | None,
    build_s: float,
    load_s: float,
    solve_s: float,
    read_started: float,
) -> Schedule:
    """The schedule from the solution held in ``build.model``'s variables (``solve`` and the
    re-planner both end here); ``read_started`` is when reading back began (perf_counter)."""
    problem = build.problem
    index = problem.grid.index  # made once: each call builds a new DatetimeIndex
    power = read_power(build, index)
    ledger = evaluate_ledger(problem, power)  # its recomputed SoC is not needed: the plan's own is read below
    terms, report = ledger.terms, ledger.report
    report.simultaneous_charge_discharge_kw, report.simultaneous_import_export_kw = simultaneous_flows_kw(build)
    gap = 0.0 if bound is None or not np.isfinite(bound) else abs(best - bound) / max(abs(best), 1e-9)
    report.solver_objective_yen = float(best)
    report.binary_count = binary_count(build)
    report.load_s = load_s
    soc = read_soc(build, index)
    report.read_s = time.perf_counter() - read_started
    unserved = unserved_message(problem, power)
    if unserved:
        log.info("plan leaves load unserved: %s", unserved)
    return Schedule(
        power_kw=power,
        soc_kwh=soc,
        status=status,
        objective_terms=terms,
        mip_gap=round(gap, 6),
        build_s=build_s,
        solve_s=solve_s,
        message=unserved,
        report=report,
        load_shed_kwh=load_shed_kwh_by_site(problem, power),
    )


def fallback_schedule(problem: Problem, reason: str, build_s: float = 0.0, solve_s: float = 0.0) -> Schedule:
    power = rule_based_power(problem)
    terms, report, soc = evaluate(problem, power)
    unserved = unserved_message(problem, power)
    return Schedule(
        power_kw=power,
        soc_kwh=soc,
        status="fallback",
        objective_terms=terms,
        mip_gap=None,
        build_s=build_s,
        solve_s=solve_s,
        message="; ".join(filter(None, (reason, unserved))),
        report=report,
        load_shed_kwh=load_shed_kwh_by_site(problem, power),
    )


def simultaneous_flows_kw(build: ModelBuild) -> tuple[float, float]:
    """The largest flow both ways at once: (storage charging and discharging in one step, a
    grid connection importing and exporting). Both should be zero in every plan."""
    flows: dict[str, float] = {"simultaneous_charge_discharge_kw": 0.0, "simultaneous_import_export_kw": 0.0}
    for component in COMPONENTS:
        for name, kw in component.simultaneous_flows_kw(build).items():
            flows[name] = max(flows[name], kw)
    return flows["simultaneous_charge_discharge_kw"], flows["simultaneous_import_export_kw"]


def binary_count(build: ModelBuild) -> int:
    return sum(component.binary_count(build) for component in COMPONENTS)


def read_power(build: ModelBuild, index: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """Per asset and step, power into the site bus [kW] (``index``: the problem's steps, if at hand)."""
    power: dict[str, np.ndarray] = {}
    for component in COMPONENTS:
        power |= component.read_power(build)
    return _frame(power, build.problem.grid.index if index is None else index)


def read_soc(build: ModelBuild, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Energy held at the end of each step [kWh]."""
    soc: dict[str, np.ndarray] = {}
    for component in COMPONENTS:
        soc |= component.read_soc(build)
    return _frame(soc, index)


def _frame(columns: dict[str, np.ndarray], index: pd.DatetimeIndex) -> pd.DataFrame:
    """``pd.DataFrame(columns, index=index)`` built from one 2-D array: the same frame (one float
    block, the columns in order) for a fraction of the time a dict of arrays takes."""
    if not columns:
        return pd.DataFrame(columns, index=index)
    values = np.array(list(columns.values()), dtype=float)
    if values.shape != (len(columns), len(index)):
        raise ValueError(f"read-back: {len(columns)} columns of {values.shape[1:]} values, expected {len(index)} steps")
    return pd.DataFrame(values.T, index=index, columns=_column_index(tuple(columns)))


@functools.lru_cache(maxsize=64)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    """The columns' Index, made once per set of asset ids (re-plans keep theirs; making a string
    Index from a list is most of a small frame's construction)."""
    return pd.Index(names)
