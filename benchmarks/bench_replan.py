"""Re-plans against HiGHS's own time: how much a plan costs beyond the solver itself.

Routes on the same problems, medians of several runs side by side:

- ``cold``: ``ems.optimise.solve`` (build the Pyomo model, compile it to matrices, pass them to
  HiGHS, solve, read the solution vector back);
- ``cold_phase_*``: the cold plan's phases timed one by one in the same run (build, compile,
  pass, HiGHS, read-back), with the former hand-over (Pyomo's APPSI ``set_instance``) beside
  them, and ``cold_build_plus_highs_ratio``: what building the Pyomo model and HiGHS alone
  take, over HiGHS (the floor of ``cold_ratio`` while the model is built in Pyomo);
- ``replanner-cold``: the re-planner's first plan (the same, keeping the model loaded);
- ``replan``: the re-planner on the next plans of a rolling day (start a step later each time:
  prices, forecasts and plug-in windows move on, the initial energy is the previous plan's),
  updating the loaded model in HiGHS and starting from the previous plan;
  ``replan_highs_plus_evaluate_ratio``: HiGHS and the objective's terms recomputed from the
  plan's powers (``evaluate_ledger``, what every read-back runs), over HiGHS; ``replan_floor_ratio``:
  that plus what every re-plan pays before HiGHS (the problem's checks and its structure key:
  ``replan_checks_and_key_s_median``; the update), over HiGHS: the ratio a re-plan would have if
  the rest of the read-back cost nothing;
- ``appsi-update-checks``: the route with Pyomo's persistent interface and its update checks on,
  measured as the time those checks alone take on an unchanged model (a lower bound for that
  route: with mutable parameters it also has to write the new numbers).

``*_ratio`` = the whole plan (validation, structure key, build or update, load, solve, read-back
into a schedule) divided by HiGHS's own time on the same model in that run. The FIT-like case
(benchmarks/fit_case.py) reports the time to a 0.1 % gap, cold and as re-plans.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time

import pandas as pd
from pyomo.contrib.appsi.solvers import Highs

from benchmarks.city_scale import REFERENCE, city_plans, city_portfolio
from benchmarks.fit_case import fit_like
from ems.optimise import solve
from ems.optimise.evaluate import evaluate_ledger
from ems.optimise.highs_model import compile_model, load
from ems.optimise.model import build_model
from ems.optimise.replanner import Replanner, structure_key
from ems.optimise.solve import _highs, run_highs

REPEATS = 5
REPLANS = 6


def reference_sequence(count: int, hours: int = 48):
    """Plans of the reference portfolio, each one step after the last (30-minute steps)."""
    from ems.config import load_portfolio
    from ems.planning import plan_inputs

    portfolio = load_portfolio(REFERENCE)
    start = pd.Timestamp("2026-04-15 06:00", tz="Asia/Tokyo")
    step = pd.Timedelta(minutes=portfolio.planning.step_minutes)
    return [plan_inputs(REFERENCE, start + k * step, horizon_hours=hours, portfolio=portfolio)[1] for k in range(count)]


def city_sequence(count: int, step_minutes: int = 5, hours: int = 24):
    """The city-scale portfolio planned every step from 06:00, the dispatcher's windows fixed."""
    from ems.config import profile_values
    from ems.optimise.inputs import problem_from_portfolio

    portfolio = city_portfolio()
    day = pd.Timestamp("2026-04-15", tz=portfolio.portfolio.timezone)
    profiles = {name: profile_values(profile, REFERENCE) for name, profile in portfolio.profiles.items()}
    plans = city_plans(portfolio, day, hours + 24)
    first = day + pd.Timedelta(hours=6)
    return [
        problem_from_portfolio(
            portfolio,
            first + pd.Timedelta(minutes=step_minutes * k),
            profiles,
            plans=plans,
            horizon_hours=hours,
            step_minutes=step_minutes,
        )
        for k in range(count)
    ]


def with_state(problem, schedule):
    """``problem`` starting from the energy ``schedule`` reached after its first step."""
    if schedule is None or schedule.status == "fallback":
        return problem
    soc = schedule.soc_kwh.iloc[0]
    batteries = tuple(
        dataclasses.replace(b, initial_soc_kwh=float(min(max(soc[b.id], 0.0), b.capacity_kwh)))
        for b in problem.batteries
    )
    evs = tuple(
        dataclasses.replace(ev, initial_soc_kwh=float(min(max(soc[ev.id], 0.0), ev.capacity_kwh))) for ev in problem.evs
    )
    return dataclasses.replace(problem, batteries=batteries, evs=evs)


def _timed(plan, problem):
    started = time.perf_counter()
    schedule = plan(problem)
    return schedule, time.perf_counter() - started


def _row(name: str, metric: str, values: list[float], unit: str) -> dict:
    return {"name": name, "metric": metric, "value": statistics.median(values), "unit": unit}


def _parts(name: str, route: str, runs: list) -> list[dict]:
    """Medians of a route's parts and of its ratio to HiGHS's time, from (schedule, wall_s) runs."""
    highs = [s.solve_s for s, _ in runs]
    rows = [
        _row(name, f"{route}_total_s_median", [w for _, w in runs], "s"),
        _row(name, f"{route}_highs_s_median", highs, "s"),
        _row(name, f"{route}_build_s_median", [s.build_s for s, _ in runs], "s"),
        _row(name, f"{route}_load_or_update_s_median", [s.report.load_s for s, _ in runs], "s"),
        _row(name, f"{route}_read_s_median", [s.report.read_s for s, _ in runs], "s"),
        _row(name, f"{route}_ratio", [w / max(s.solve_s, 1e-9) for s, w in runs], "x HiGHS"),
    ]
    rows.append(
        {
            "name": name,
            "metric": f"{route}_optimal",
            "value": sum(s.status == "optimal" for s, _ in runs),
            "unit": f"of {len(runs)}",
        }
    )
    return rows


def _appsi_update_checks_s(problem, repeats: int) -> list[float]:
    """Route (a)'s floor: a persistent APPSI solve with every update check on, less HiGHS's time."""
    build = build_model(problem)
    solver = Highs()
    solver.config.load_solution = False
    solver.config.mip_gap = problem.settings.mip_gap
    solver.set_instance(build.model)
    solver.solve(build.model)
    overheads = []
    for _ in range(repeats):
        highs_before = solver._solver_model.getRunTime()
        started = time.perf_counter()
        solver.solve(build.model)
        wall = time.perf_counter() - started
        overheads.append(wall - (solver._solver_model.getRunTime() - highs_before))
    return overheads


def _cold_phases(name: str, problem, repeats: int) -> list[dict]:
    """The cold plan's phases one by one, and the former hand-over (APPSI) of the same model."""
    phases: dict[str, list[float]] = {key: [] for key in ("build", "compile", "pass", "highs", "read", "appsi_load")}
    floor = []
    for _ in range(repeats):
        # the previous repeat's models are garbage by now: collected here, untimed, so a full
        # collection of them does not land in whichever phase happens to trigger it
        gc.collect()
        started = time.perf_counter()
        build = build_model(problem)
        phases["build"].append(time.perf_counter() - started)
        started = time.perf_counter()
        compiled = compile_model(build.model)
        phases["compile"].append(time.perf_counter() - started)
        started = time.perf_counter()
        loaded = load(compiled)
        phases["pass"].append(time.perf_counter() - started)
        schedule = run_highs(loaded, build, phases["build"][-1], 0.0)
        phases["highs"].append(schedule.solve_s)
        phases["read"].append(schedule.report.read_s or 0.0)
        floor.append((phases["build"][-1] + schedule.solve_s) / max(schedule.solve_s, 1e-9))
        other = build_model(problem)
        started = time.perf_counter()
        _highs(problem.settings).set_instance(other.model)
        phases["appsi_load"].append(time.perf_counter() - started)
        del build, compiled, loaded, schedule, other
    rows = [_row(name, f"cold_phase_{key}_s_median", values, "s") for key, values in phases.items()]
    rows.append(_row(name, "cold_build_plus_highs_ratio", floor, "x HiGHS"))
    return rows


def measure(name: str, sequence: list, repeats: int) -> list[dict]:
    first = sequence[0]
    cold = [_timed(solve, first) for _ in range(repeats)]
    fresh = [_timed(Replanner().solve, first) for _ in range(repeats)]
    replanner = Replanner()
    previous, replans, cold_same, evaluate_s, before_s, checks_s = None, [], [], [], [], []
    for k, problem in enumerate(sequence):
        problem = with_state(problem, previous)
        schedule, wall = _timed(replanner.solve, problem)
        if k > 0:
            replans.append((schedule, wall))
            cold_same.append(solve(problem))
            started = time.perf_counter()
            evaluate_ledger(problem, schedule.power_kw)
            evaluate_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            problem.validate()
            structure_key(problem)
            checks_s.append(time.perf_counter() - started)
            before_s.append(checks_s[-1] + (schedule.report.load_s or 0.0))
        previous = schedule
    rows = _parts(name, "cold", cold) + _cold_phases(name, first, repeats) + _parts(name, "replanner_cold", fresh)
    rows += _parts(name, "replan", replans)
    # part of the read-back any route pays: the objective's terms and figures recomputed from the powers
    rows.append(_row(name, "replan_evaluate_s_median", evaluate_s, "s"))
    rows.append(_row(name, "replan_checks_and_key_s_median", checks_s, "s"))  # Problem.validate + structure_key
    rows.append(
        _row(
            name,
            "replan_highs_plus_evaluate_ratio",
            [(s.solve_s + e) / max(s.solve_s, 1e-9) for (s, _), e in zip(replans, evaluate_s, strict=True)],
            "x HiGHS",
        )
    )
    rows.append(
        _row(
            name,
            "replan_floor_ratio",
            [
                (s.solve_s + e + b) / max(s.solve_s, 1e-9)
                for (s, _), e, b in zip(replans, evaluate_s, before_s, strict=True)
            ],
            "x HiGHS",
        )
    )
    rows.append(
        {
            "name": name,
            "metric": "replan_models_reused",
            "value": sum(float(bool(s.report.model_reused)) for s, _ in replans),
            "unit": f"of {len(replans)}",
        }
    )
    # the same re-planned problems solved cold: HiGHS's time there, and the objective agreement
    rows.append(
        _row(
            name,
            "replan_ratio_to_cold_highs",
            [w / max(c.solve_s, 1e-9) for (_, w), c in zip(replans, cold_same, strict=True)],
            "x HiGHS",
        )
    )
    rows.append(
        {
            "name": name,
            "metric": "replan_objective_difference_max",
            "value": max(
                abs(s.objective_yen - c.objective_yen) / max(abs(c.objective_yen), 1.0)
                for (s, _), c in zip(replans, cold_same, strict=True)
            ),
            "unit": "fraction",
        }
    )
    overheads = _appsi_update_checks_s(first, 3)
    highs_s = statistics.median(s.solve_s for s, _ in cold)
    rows.append(_row(name, "appsi_update_checks_s_median", overheads, "s"))
    rows.append(
        {
            "name": name,
            "metric": "appsi_update_checks_ratio",
            "value": 1.0 + statistics.median(overheads) / max(highs_s, 1e-9),
            "unit": "x HiGHS",
        }
    )
    return rows


def fit_rows(repeats: int) -> list[dict]:
    """The FIT-like case at a 0.1 % gap: cold plans, and re-plans a step later each time."""
    name = "replan/fit-like-2-sites-30min-48h"
    sequence = [fit_like(p) for p in reference_sequence(REPLANS)]
    sequence = [
        dataclasses.replace(p, settings=dataclasses.replace(p.settings, mip_gap=0.001, time_limit_s=60.0))
        for p in sequence
    ]
    cold = [_timed(solve, sequence[0]) for _ in range(repeats)]
    rows = [
        _row(name, "cold_total_s_median", [w for _, w in cold], "s"),
        _row(name, "cold_highs_s_median", [s.solve_s for s, _ in cold], "s"),
        {"name": name, "metric": "cold_gap_max", "value": max(s.mip_gap for s, _ in cold), "unit": "fraction"},
        {
            "name": name,
            "metric": "cold_optimal",
            "value": sum(s.status == "optimal" for s, _ in cold),
            "unit": f"of {repeats}",
        },
        {"name": name, "metric": "binaries", "value": cold[0][0].report.binary_count, "unit": "count"},
    ]
    replanner, previous, replans = Replanner(), None, []
    for k, problem in enumerate(sequence):
        schedule, wall = _timed(replanner.solve, with_state(problem, previous))
        if k > 0:
            replans.append((schedule, wall))
        previous = schedule
    rows += [
        _row(name, "replan_total_s_median", [w for _, w in replans], "s"),
        _row(name, "replan_highs_s_median", [s.solve_s for s, _ in replans], "s"),
        {"name": name, "metric": "replan_total_s_max", "value": max(w for _, w in replans), "unit": "s"},
        {"name": name, "metric": "replan_gap_max", "value": max(s.mip_gap for s, _ in replans), "unit": "fraction"},
        {
            "name": name,
            "metric": "replan_models_reused",
            "value": sum(float(bool(s.report.model_reused)) for s, _ in replans),
            "unit": f"of {len(replans)}",
        },
    ]
    return rows


def run() -> list[dict]:
    rows = measure("replan/reference-30min-48h", reference_sequence(REPLANS + 1), REPEATS)
    rows += measure("replan/city-5min-24h", city_sequence(4), 3)
    rows += fit_rows(3)
    return rows
