"""``plan_bcp(problem) -> BcpPlan``: build the MILP, solve it on HiGHS, read the plan back.

Pure: no file, clock or global is read (the timings are measurements, not inputs). The model is
always feasible (doing nothing is a plan), so a solver that ends without a solution is an error.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs

from ems.bcp.bound import joint_upper_bound_hours, upper_bound_hours
from ems.bcp.build import OBJECTIVE_TERMS, BcpBuild
from ems.bcp.components.vehicle import rotation_blocks
from ems.bcp.model import build_bcp_model
from ems.bcp.plan import BcpPlan, Visit
from ems.bcp.problem import BcpProblem
from ems.bcp.rotation import rule_based_rotation


class BcpSolveError(RuntimeError):
    """HiGHS ended without any plan."""


def _highs(problem: BcpProblem, warmstart: bool = False, time_limit_s: float | None = None) -> Highs:
    solver = Highs()
    solver.config.time_limit = problem.settings.time_limit_s if time_limit_s is None else time_limit_s
    solver.config.mip_gap = problem.settings.mip_gap
    solver.config.load_solution = False
    solver.config.stream_solver = False
    solver.config.warmstart = warmstart
    return solver


def _solved(results) -> bool:
    return results.best_feasible_objective is not None and results.termination_condition in (
        TerminationCondition.optimal,
        TerminationCondition.maxTimeLimit,
    )


def plan_bcp(problem: BcpProblem) -> BcpPlan:
    """Plan ``problem``: the rule-based rotation, made optimal in its flows, starts the MILP search.

    Status: ``optimal`` (within the MIP gap), ``time_limit`` (best plan found in the time limit)
    or ``rule_based`` (the MILP found nothing better than the rule-based rotation).
    """
    started = time.perf_counter()
    build = build_bcp_model(problem)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    placed = rule_based_rotation(problem)
    at = build.model.vehicle_at
    for key in at:
        at[key].fix(placed.get(key, 0))
    start = _highs(problem).solve(build.model)
    if not _solved(start):
        raise BcpSolveError(f"HiGHS ended with {start.termination_condition.name} on the rule-based rotation")
    start.solution_loader.load_vars()
    start_values = {id(v): v.value for v in build.model.component_data_objects(pyo.Var)}
    for key in at:
        at[key].unfix()
    best_possible = objective_bound(build)
    if best_possible - start.best_feasible_objective <= problem.settings.mip_gap * abs(start.best_feasible_objective):
        # the start is within the gap of what serving every kWh would be worth: nothing to search for
        gap = round(
            max(0.0, best_possible - start.best_feasible_objective) / max(abs(start.best_feasible_objective), 1e-9), 6
        )
        return read_plan(
            build, "optimal", gap, build_s, time.perf_counter() - started, float(start.best_feasible_objective)
        )
    # a start that already serves every kWh of critical load leaves only the ride service, calls,
    # driving and stored energy to improve: a shorter search (status then says whether it did)
    time_limit_s = problem.settings.time_limit_s
    if serves_everything(build):
        time_limit_s = min(time_limit_s, problem.settings.secondary_time_limit_s)
    results = _highs(problem, warmstart=True, time_limit_s=time_limit_s).solve(build.model)
    solve_s = time.perf_counter() - started
    improved = _solved(results) and results.best_feasible_objective > start.best_feasible_objective + 1e-6
    if improved:
        results.solution_loader.load_vars()
        best = results.best_feasible_objective
    else:  # the rule-based rotation is as good as anything found: keep it
        for var in build.model.component_data_objects(pyo.Var):
            var.set_value(start_values[id(var)], skip_validation=True)
        best = start.best_feasible_objective
    bound = results.best_objective_bound
    gap = None if bound is None or not np.isfinite(bound) else round(max(0.0, bound - best) / max(abs(best), 1e-9), 6)
    if results.termination_condition == TerminationCondition.optimal:
        status = "optimal"
    else:
        status = "time_limit" if improved else "rule_based"
    return read_plan(build, status, gap, build_s, solve_s, float(best))


def serves_everything(build: BcpBuild, tolerance_kwh: float = 1e-4) -> bool:
    """True if the values loaded in the model serve every shelter's critical load in full."""
    m = build.model
    return all(
        pyo.value(m.shelter_served_kw[s.id, t]) >= s.demand_kw[t] - tolerance_kwh
        for s in build.problem.shelters
        for t in build.steps
    )


def objective_bound(build: BcpBuild) -> float:
    """An upper bound on the objective from the variables' bounds alone (every positive term at
    its largest, every cost at its smallest): every kWh of critical load served, nothing driven."""
    total = 0.0
    for terms in build.objective.values():
        for coef, var in terms:
            lower, upper = var.bounds
            end = upper if coef > 0 else lower
            if end is None:
                return float("inf")
            total += coef * end
    return total


def _frame(var, columns, index) -> pd.DataFrame:
    values = {c: [pyo.value(var[c, t]) if (c, t) in var else 0.0 for t in range(len(index))] for c in columns}
    return pd.DataFrame(values, index=index, columns=list(columns)).fillna(0.0)


def read_plan(build: BcpBuild, status: str, gap, build_s: float, solve_s: float, objective: float) -> BcpPlan:
    m, problem = build.model, build.problem
    index = problem.index
    bounds_index = pd.date_range(problem.start, periods=problem.steps + 1, freq=f"{problem.step_minutes}min")
    shelters = [s.id for s in problem.shelters]
    served = _frame(m.shelter_served_kw, shelters, index)
    demand = pd.DataFrame({s.id: s.demand_kw for s in problem.shelters}, index=index, columns=shelters)
    pv = _frame(m.shelter_pv_used_kw, shelters, index)
    up = ((served >= demand - 1e-4).cummin()) if len(index) else served.astype(bool)
    battery_kw = pd.DataFrame(0.0, index=index, columns=shelters)
    for b in problem.batteries:
        for t in range(problem.steps):
            battery_kw.iloc[t, shelters.index(b.shelter_id)] += pyo.value(
                m.bcp_battery_discharge_kw[b.id, t]
            ) - pyo.value(m.bcp_battery_charge_kw[b.id, t])
    battery_soc = pd.DataFrame(
        {
            b.id: [pyo.value(m.bcp_battery_soc_kwh[b.id, t]) for t in range(problem.steps + 1)]
            for b in problem.batteries
        },
        index=bounds_index,
    )
    blocks = rotation_blocks(problem.steps, problem.rotation_steps)
    block_starts = [index[b[0]] for b in blocks] + [index[-1] + pd.Timedelta(minutes=problem.step_minutes)]
    vehicle_kw = pd.DataFrame(
        {
            s: [
                pyo.value(m.fleet_discharge_kw[s, t]) - pyo.value(m.fleet_charge_kw[s, t])
                if (s, t) in m.fleet_discharge_kw
                else 0.0
                for t in range(problem.steps)
            ]
            for s in shelters
        },
        index=index,
        columns=shelters,
    )
    location = pd.DataFrame("", index=index, columns=[v.id for v in problem.vehicles])
    soc = pd.DataFrame(
        {v.id: [pyo.value(m.vehicle_soc_kwh[v.id, k]) for k in range(len(blocks) + 1)] for v in problem.vehicles},
        index=pd.DatetimeIndex(block_starts),
    )
    delivered, km, visits = {}, {}, []
    charge_site = pd.DataFrame("", index=pd.DatetimeIndex(block_starts[:-1]), columns=[v.id for v in problem.vehicles])
    for v in problem.vehicles:
        delivered[v.id], km[v.id] = 0.0, 0.0
        column = location.columns.get_loc(v.id)
        for k, block in enumerate(blocks):
            if sum(pyo.value(m.vehicle_charging[v.id, c.site, k]) for c in problem.charging_sites) > 1e-3:
                location.iloc[block, column] = "at charger"
            charged = {c.site: pyo.value(m.vehicle_grid_charge_kwh[v.id, c.site, k]) for c in problem.charging_sites}
            if charged and max(charged.values()) > 1e-3:
                charge_site.iloc[k, column] = max(charged, key=lambda site: charged[site])
        for s in shelters:
            if (v.id, s, 0) not in m.vehicle_at:
                continue
            present = [pyo.value(m.vehicle_at[v.id, s, k]) > 0.5 for k in range(len(blocks))]
            net = [
                pyo.value(m.vehicle_delivered_kwh[v.id, s, k]) - pyo.value(m.vehicle_shelter_charge_kwh[v.id, s, k])
                for k in range(len(blocks))
            ]
            lowest = [_lowest_kwh(m, problem, v, s, k) for k in range(len(blocks))]
            delivered[v.id] += sum(net)
            km[v.id] += sum(
                v.trip_to_km[s] * pyo.value(m.vehicle_arrives[v.id, s, k])
                + v.trip_back_km[s] * pyo.value(m.vehicle_leaves[v.id, s, k])
                for k in range(len(blocks))
            )
            for k, here in enumerate(present):
                if here:
                    location.iloc[blocks[k], column] = s
            visits += _visits(v, s, present, net, lowest, block_starts)
    terms = {name: float(pyo.value(m.objective_term[name])) for name in OBJECTIVE_TERMS}
    return BcpPlan(
        problem=problem,
        status=status,
        mip_gap=gap,
        build_s=build_s,
        solve_s=solve_s,
        objective=objective,
        demand_kw=demand,
        served_kw=served,
        pv_kw=pv,
        battery_kw=battery_kw,
        vehicle_kw=vehicle_kw,
        up=up,
        vehicle_location=location,
        vehicle_soc_kwh=soc,
        battery_soc_kwh=battery_soc,
        vehicle_delivered_kwh=delivered,
        vehicle_km=km,
        visits=tuple(sorted(visits, key=lambda x: (x.arrive, x.vehicle_id))),
        upper_bound_hours=upper_bound_hours(problem),
        objective_terms=terms,
        joint_upper_bound_hours=joint_upper_bound_hours(problem),
        vehicle_charge_site=charge_site,
        service_kwh={
            v.id: sum(pyo.value(m.vehicle_service_kwh[v.id, k]) for k in range(len(blocks))) for v in problem.vehicles
        },
        grid_charge_kwh=pd.DataFrame(
            {
                c.site: [
                    sum(pyo.value(m.vehicle_grid_charge_kwh[v.id, c.site, k]) for v in problem.vehicles)
                    for k in range(len(blocks))
                ]
                for c in problem.charging_sites
            },
            index=pd.DatetimeIndex(block_starts[:-1]),
            columns=[c.site for c in problem.charging_sites],
        ),
    )


def _lowest_kwh(m, problem: BcpProblem, vehicle, shelter: str, k: int) -> float:
    """Energy left after the block's drives and discharge at ``shelter``, before any recharge."""
    driven = sum(
        vehicle.trip_to_kwh[s.id] * pyo.value(m.vehicle_arrives[vehicle.id, s.id, k])
        + vehicle.trip_back_kwh[s.id] * pyo.value(m.vehicle_leaves[vehicle.id, s.id, k])
        for s in problem.shelters
        if (vehicle.id, s.id, k) in m.vehicle_at
    )
    efficiency = next(s.v2h_efficiency for s in problem.shelters if s.id == shelter)
    return (
        pyo.value(m.vehicle_soc_kwh[vehicle.id, k])
        - driven
        - pyo.value(m.vehicle_delivered_kwh[vehicle.id, shelter, k]) / efficiency
    )


def _visits(
    vehicle, shelter: str, present: list[bool], net_kwh: list[float], lowest_kwh: list[float], block_starts
) -> list[Visit]:
    visits, k = [], 0
    while k < len(present):
        if not present[k]:
            k += 1
            continue
        first = k
        while k < len(present) and present[k]:
            k += 1
        visits.append(
            Visit(
                vehicle_id=vehicle.id,
                shelter_id=shelter,
                arrive=block_starts[first],
                leave=block_starts[k],
                delivered_kwh=float(sum(net_kwh[first:k])),
                lowest_soc_kwh=float(min(lowest_kwh[first:k])),
                drive_back_floor_kwh=vehicle.soc_min_kwh + vehicle.trip_back_kwh[shelter],
            )
        )
    return visits
