"""Re-plans that update the model HiGHS holds instead of building it again.

``Replanner.solve(problem)`` plans like :func:`ems.optimise.solve` (same model, same schedule,
same fallback) but keeps the model loaded in HiGHS between calls. When the next problem has the
same structure (:func:`structure_key`: the assets, the horizon, the settings, where binaries
and shed variables are, the demand-response events), only the numbers that re-plans change are
written into HiGHS, straight from the problem through index maps recorded when the model was
loaded:

- prices: the grid's import and export costs;
- forecasts: PV limits, shed limits, the site buses' constants (row bounds);
- initial energy of batteries and vehicles (the fixed first state, the widened bounds, the
  terminal value's constant);
- plug-in windows: a vehicle's charge, discharge and driving limits, the bus it feeds, its
  driving energy and where its departure targets fall.

HiGHS is then run from the previous plan (a start for the MIP, the last basis for an LP). Any
other change builds the model again. A model is never left half-updated: an error while
updating drops it, and the next call builds afresh.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from ems.optimise.build import ModelBuild
from ems.optimise.components.load import shed_steps
from ems.optimise.model import build_model, storage_binary_steps
from ems.optimise.problem import Problem
from ems.optimise.schedule import Schedule
from ems.optimise.solve import _highs, fallback_schedule, solved_schedule

log = logging.getLogger(__name__)


def structure_key(problem: Problem) -> str:
    """A digest of everything that shapes the model; two problems with the same key differ only in
    the numbers a re-plan writes into the loaded model (see the module docstring)."""
    g, s = problem.grid, problem.settings
    parts: list = [g.step_minutes, g.steps, problem.sites, repr(s)]
    binaries = storage_binary_steps(problem)
    parts.append(binaries.tobytes())
    for grid in problem.grids:
        exclusive = grid.export_price_yen_per_kwh >= grid.effective_import_yen_per_kwh - 1e-9
        parts += [grid.id, grid.site, grid.import_limit_kw, grid.export_limit_kw, grid.exclusive_import_export,
                  grid.carbon_price_yen_per_kg, grid.contract_demand_kw, grid.demand_charge_yen_per_kw, grid.available,
                  exclusive.tobytes()]
        if grid.exclusive_import_export and exclusive.any():  # the binary's limits and cuts read the site's data there
            parts.append(_site_data_at(problem, grid.site, exclusive))
    for site in problem.sites:
        parts.append(shed_steps(problem, site).tobytes())
    for pv in problem.pvs:
        parts += [pv.id, pv.site, pv.curtailable]
    for load in problem.loads:
        parts += [load.id, load.site, load.kind, (load.demand_kw > 0).tobytes()]
    for b in problem.batteries:
        parts += [b.id, b.site, b.capacity_kwh, b.soc_min_kwh, b.soc_max_kwh, b.charge_max_kw, b.discharge_max_kw,
                  b.charge_efficiency, b.discharge_efficiency, b.degradation_yen_per_kwh, b.reserve_kwh]
    for ev in problem.evs:
        parts += [ev.id, ev.capacity_kwh, ev.soc_min_kwh, ev.soc_max_kwh, ev.charge_efficiency, ev.discharge_efficiency,
                  ev.keep_energy_kwh, len(ev.departure_targets),
                  ((ev.discharge_max_kw > 0) & binaries).tobytes(), ev.charge_max_kw[binaries].tobytes(),
                  ev.discharge_max_kw[binaries].tobytes()]
    for event in problem.dr_events:
        parts += [event.id, event.direction, event.sites, event.active.tobytes(), event.baseline_kw.tobytes(),
                  event.requested_kw, event.price_yen_per_kwh, event.penalty_yen_per_kwh]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _site_data_at(problem: Problem, site: str, steps: np.ndarray) -> bytes:
    """The site's forecasts and plug-in data in ``steps`` (they set the grid binary's limits)."""
    data = [pv.available_kw[steps] for pv in problem.pvs if pv.site == site]
    data += [ld.demand_kw[steps] for ld in problem.loads if ld.site == site]
    for ev in problem.evs:
        here = np.array([c == site for c in ev.charger_site])[steps]
        data += [here, ev.charge_max_kw[steps], ev.discharge_max_kw[steps]]
    return b"".join(np.asarray(d, dtype=float).tobytes() for d in data)


@dataclass
class _Loaded:
    """A model loaded in HiGHS, with where each re-planned number sits in it."""

    key: str
    build: ModelBuild
    highs: highspy.Highs
    col: dict  # id(pyomo var) -> column
    row: dict  # pyomo constraint data -> row
    variables: list  # (pyomo var, column) for reading the solution back
    objective_constant: float
    ev_bus_rows: dict = field(default_factory=dict)  # column -> the bus row it is in now (or None)
    ev_target_cols: dict = field(default_factory=dict)  # target row -> the SoC column it reads now
    last_solution: np.ndarray | None = None


class Replanner:
    """Plans one problem after another, updating the loaded model when the structure allows.

    Not thread-safe: one re-planner per planning loop. ``solve`` never raises for a solver
    fault (the rule-based fallback answers, as with :func:`ems.optimise.solve`).
    """

    def __init__(self) -> None:
        self._loaded: _Loaded | None = None
        self.builds = 0  # how many times a model was built and loaded
        self.updates = 0  # how many re-plans updated the loaded model

    def solve(self, problem: Problem) -> Schedule:
        problem.validate()
        key = structure_key(problem)
        started = time.perf_counter()
        if self._loaded is not None and self._loaded.key == key:
            loaded = self._loaded
            try:
                _update(loaded, problem)
            except Exception:
                self._loaded = None
                raise
            build_s, load_s, cold = 0.0, time.perf_counter() - started, False
            self.updates += 1
        else:
            self._loaded = None
            build = build_model(problem)
            build_s = time.perf_counter() - started
            started = time.perf_counter()
            try:
                loaded = _load(key, build)
            except RuntimeError as error:  # HiGHS reports a failed model load this way
                log.error("HiGHS failed: %s; using the rule-based fallback", error)
                return fallback_schedule(problem, f"solver error: {error}", build_s, time.perf_counter() - started)
            load_s, cold = time.perf_counter() - started, True
            self.builds += 1
        schedule = _run(loaded, problem, build_s, load_s)
        if schedule.status == "fallback":
            self._loaded = None  # nothing to start from; build afresh next time
        else:
            self._loaded = loaded
        schedule.shortfalls["model_reused"] = 0.0 if cold else 1.0
        return schedule


def _load(key: str, build: ModelBuild) -> _Loaded:
    """Hand the model to HiGHS once (APPSI's loader) and keep its index maps."""
    for var in build.model.component_data_objects(ctype=_var_type(), descend_into=True):
        if var.fixed:  # a column with equal bounds, not a constant folded into rows: a re-plan moves it
            value = var.value
            var.unfix()
            var.setlb(value)
            var.setub(value)
    solver = _highs(build.problem.settings)
    solver.set_instance(build.model)
    highs = solver._solver_model
    col = dict(solver._pyomo_var_to_solver_var_map)
    row = dict(solver._pyomo_con_to_solver_con_map)
    m = build.model
    variables = [(v, col[id(v)]) for v in m.component_data_objects(ctype=_var_type(), descend_into=True) if id(v) in col]
    constant = float(sum(build.objective_constant.values()))
    loaded = _Loaded(key=key, build=build, highs=highs, col=col, row=row, variables=variables, objective_constant=constant)
    problem = build.problem
    for ev in problem.evs:
        for t in range(problem.grid.steps):
            site = ev.charger_site[t]
            bus = row.get(m.site_balance[site, t]) if site is not None else None
            loaded.ev_bus_rows[col[id(m.ev_charge_kw[ev.id, t])]] = bus
            loaded.ev_bus_rows[col[id(m.ev_discharge_kw[ev.id, t])]] = bus
        for (k, _energy), target_row in zip(ev.departure_targets, _target_rows(loaded, ev), strict=True):
            loaded.ev_target_cols[target_row] = col[id(m.ev_soc_kwh[ev.id, k])]
    return loaded


def _var_type():
    import pyomo.environ as pyo

    return pyo.Var


def _target_rows(loaded: _Loaded, ev) -> list[int]:
    """The rows of ``ev``'s departure targets, in the order of the problem the model was built from."""
    m, built = loaded.build.model, loaded.build.problem
    spec = next(e for e in built.evs if e.id == ev.id)
    return [loaded.row[m.ev_departure_target[ev.id, k]] for k, _energy in spec.departure_targets]


def _update(loaded: _Loaded, problem: Problem) -> None:
    """Write the numbers of ``problem`` that differ from re-plan to re-plan into the loaded model."""
    h, m, col, row = loaded.highs, loaded.build.model, loaded.col, loaded.row
    dt_h, steps, settings = problem.grid.step_h, problem.grid.steps, problem.settings
    cost_cols: list[int] = []
    costs: list[float] = []
    bound_cols: list[int] = []
    lower: list[float] = []
    upper: list[float] = []

    def bound(var, lo: float, hi: float) -> None:
        bound_cols.append(col[id(var)])
        lower.append(lo)
        upper.append(hi)

    for g in problem.grids:
        import_cost = (g.import_price_yen_per_kwh + g.co2_kg_per_kwh * g.carbon_price_yen_per_kg) * dt_h
        export_cost = -g.export_price_yen_per_kwh * dt_h
        for t in range(steps):
            cost_cols += [col[id(m.grid_import_kw[g.id, t])], col[id(m.grid_export_kw[g.id, t])]]
            costs += [float(import_cost[t]), float(export_cost[t])]
    for pv in problem.pvs:
        if pv.curtailable:
            for t in range(steps):
                bound(m.pv_kw[pv.id, t], 0.0, float(pv.available_kw[t]))
    for key in m.load_shed_kw:
        load = next(ld for ld in problem.loads if ld.id == key[0])
        bound(m.load_shed_kw[key], 0.0, float(load.demand_kw[key[1]]))
    initial_kwh = 0.0
    for b in problem.batteries:
        _soc_bounds(m.battery_soc_kwh, b.id, b.soc_min_kwh, b.soc_max_kwh, b.initial_soc_kwh, steps, bound)
        initial_kwh += b.initial_soc_kwh
    row_rows: list[int] = []
    row_values: list[float] = []
    for ev in problem.evs:
        initial_kwh += ev.initial_soc_kwh
        _soc_bounds(m.ev_soc_kwh, ev.id, ev.soc_min_kwh, ev.soc_max_kwh, ev.initial_soc_kwh, steps, bound)
        for t in range(steps):
            bound(m.ev_charge_kw[ev.id, t], 0.0, float(ev.charge_max_kw[t]))
            bound(m.ev_discharge_kw[ev.id, t], 0.0, float(ev.discharge_max_kw[t]))
            bound(m.ev_drive_shortfall_kwh[ev.id, t], 0.0, float(ev.drive_kwh[t]))
            row_rows.append(row[m.ev_soc_balance[ev.id, t]])
            row_values.append(float(ev.drive_kwh[t]))  # soc[t+1] - soc[t] - ... - shortfall == -drive
            _move_to_bus(loaded, m, ev.id, t, ev.charger_site[t])
        _move_targets(loaded, m, ev)
    if row_rows:
        rhs = -np.array(row_values)
        h.changeRowsBounds(len(row_rows), np.array(row_rows, dtype=np.int32), rhs, rhs)
    bus_rows, bus_rhs = [], []
    constant = _bus_constants(problem)
    for (site, t), value in constant.items():
        con = m.site_balance[site, t] if (site, t) in m.site_balance else None
        if con is not None:
            bus_rows.append(row[con])
            bus_rhs.append(-value)
    if bus_rows:
        rhs = np.array(bus_rhs)
        h.changeRowsBounds(len(bus_rows), np.array(bus_rows, dtype=np.int32), rhs, rhs)
    h.changeColsCost(len(cost_cols), np.array(cost_cols, dtype=np.int32), np.array(costs))
    h.changeColsBounds(len(bound_cols), np.array(bound_cols, dtype=np.int32), np.array(lower), np.array(upper))
    built = loaded.build.problem
    built_initial = sum(b.initial_soc_kwh for b in built.batteries) + sum(ev.initial_soc_kwh for ev in built.evs)
    offset = loaded.objective_constant + settings.terminal_value_yen_per_kwh * (initial_kwh - built_initial)
    h.changeObjectiveOffset(offset)
    loaded.build.problem = problem  # read-back maps the solution onto the new problem's assets
    loaded.objective_constant = offset


def _soc_bounds(soc, asset: str, soc_min: float, soc_max: float, initial: float, steps: int, bound) -> None:
    """The stored energy's bounds widened to include the initial energy; the first one fixed."""
    bound(soc[asset, 0], initial, initial)
    lo, hi = min(soc_min, initial), max(soc_max, initial)
    for t in range(1, steps + 1):
        bound(soc[asset, t], lo, hi)


def _move_to_bus(loaded: _Loaded, m, ev_id: str, t: int, site: str | None) -> None:
    """Put the vehicle's charge and discharge of step ``t`` on the bus of ``site`` (on none while away)."""
    bus = loaded.row[m.site_balance[site, t]] if site is not None else None
    for var, coef in ((m.ev_charge_kw[ev_id, t], -1.0), (m.ev_discharge_kw[ev_id, t], 1.0)):
        column = loaded.col[id(var)]
        now = loaded.ev_bus_rows.get(column)
        if now == bus:
            continue
        if now is not None:
            loaded.highs.changeCoeff(now, column, 0.0)
        if bus is not None:
            loaded.highs.changeCoeff(bus, column, coef)
        loaded.ev_bus_rows[column] = bus


def _move_targets(loaded: _Loaded, m, ev) -> None:
    """Each departure target's row reads the SoC of its (new) departure step, at its (new) energy."""
    h = loaded.highs
    for (k, energy), target_row in zip(ev.departure_targets, _target_rows(loaded, ev), strict=True):
        column = loaded.col[id(m.ev_soc_kwh[ev.id, k])]
        now = loaded.ev_target_cols[target_row]
        if now != column:
            h.changeCoeff(target_row, now, 0.0)
            h.changeCoeff(target_row, column, 1.0)
            loaded.ev_target_cols[target_row] = column
        h.changeRowBounds(target_row, float(energy), highspy.kHighsInf)


def _bus_constants(problem: Problem) -> dict:
    """(site, t) -> the bus's constant [kW]: PV that cannot be curtailed less the demand."""
    constant = {(site, t): 0.0 for site in problem.sites for t in range(problem.grid.steps)}
    for pv in problem.pvs:
        if not pv.curtailable:
            for t in range(problem.grid.steps):
                constant[(pv.site, t)] += float(pv.available_kw[t])
    for load in problem.loads:
        for t in range(problem.grid.steps):
            constant[(load.site, t)] -= float(load.demand_kw[t])
    return constant


def _run(loaded: _Loaded, problem: Problem, build_s: float, load_s: float) -> Schedule:
    """Run HiGHS (from the previous plan when there is one) and read the plan back."""
    h, settings = loaded.highs, problem.settings
    h.setOptionValue("time_limit", float(settings.time_limit_s))
    h.setOptionValue("mip_rel_gap", float(settings.mip_gap))
    h.setOptionValue("output_flag", False)
    if loaded.last_solution is not None and h.getNumCol() == len(loaded.last_solution):
        start = highspy.HighsSolution()
        start.col_value = loaded.last_solution
        start.value_valid = True
        h.setSolution(start)
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
    values = np.asarray(h.getSolution().col_value)
    loaded.last_solution = values
    for var, column in loaded.variables:
        var.set_value(float(values[column]), skip_validation=True)
    best = float(info.objective_function_value)
    is_mip = h.getLp().integrality_ and any(i != highspy.HighsVarType.kContinuous for i in h.getLp().integrality_)
    bound = float(info.mip_dual_bound) if is_mip else None
    return solved_schedule(loaded.build, status, best, bound, build_s, load_s, solve_s, started)
