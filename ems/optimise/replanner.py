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

import dataclasses
import hashlib
import itertools
import logging
import threading
import time
from dataclasses import dataclass

import highspy
import numpy as np
import pandas as pd

from ems.optimise.build import ModelBuild
from ems.optimise.components.ev import home_site
from ems.optimise.components.load import shed_steps
from ems.optimise.highs_model import LoadedModel, compile_model, solution_values
from ems.optimise.highs_model import load as load_into_highs
from ems.optimise.model import build_model, storage_binary_steps
from ems.optimise.problem import BatterySpec, EvSpec, Problem
from ems.optimise.schedule import Schedule
from ems.optimise.solve import fallback_schedule, run_highs

log = logging.getLogger(__name__)


def structure_key(problem: Problem) -> str:
    """A digest of everything that shapes the model; two problems with the same key differ only in
    the numbers a re-plan writes into the loaded model (see the module docstring)."""
    g, s = problem.grid, problem.settings
    parts: list = [g.step_minutes, g.steps, problem.sites, repr(dataclasses.replace(s, terminal_value_yen_per_kwh=0.0))]
    binaries = storage_binary_steps(problem)
    parts.append(binaries.tobytes())
    for grid in problem.grids:
        exclusive = grid.export_price_yen_per_kwh >= grid.effective_import_yen_per_kwh - 1e-9
        parts += [
            grid.id,
            grid.site,
            grid.import_limit_kw,
            grid.export_limit_kw,
            grid.exclusive_import_export,
            grid.carbon_price_yen_per_kg,
            grid.contract_demand_kw,
            grid.demand_charge_yen_per_kw,
            grid.available,
            exclusive.tobytes(),
        ]
        if grid.exclusive_import_export and exclusive.any():  # the binary's limits and cuts read the site's data there
            parts.append(_site_data_at(problem, grid.site, exclusive))
    for site in problem.sites:
        parts.append(shed_steps(problem, site).tobytes())
    for pv in problem.pvs:
        parts += [pv.id, pv.site, pv.curtailable]
    for load in problem.loads:
        parts += [load.id, load.site, load.kind, (load.demand_kw > 0).tobytes()]
    for b in problem.batteries:
        parts += [
            b.id,
            b.site,
            b.capacity_kwh,
            b.soc_min_kwh,
            b.soc_max_kwh,
            b.charge_max_kw,
            b.discharge_max_kw,
            b.charge_efficiency,
            b.discharge_efficiency,
            b.degradation_yen_per_kwh,
            b.reserve_kwh,
        ]
    for ev in problem.evs:
        parts += [
            ev.id,
            ev.capacity_kwh,
            ev.soc_min_kwh,
            ev.soc_max_kwh,
            ev.charge_efficiency,
            ev.discharge_efficiency,
            ev.keep_energy_kwh,
            ((ev.discharge_max_kw > 0) & binaries).tobytes(),
            ev.charge_max_kw[binaries].tobytes(),
            ev.discharge_max_kw[binaries].tobytes(),
        ]
    for event in problem.dr_events:
        parts += [
            event.id,
            event.direction,
            event.sites,
            event.active.tobytes(),
            event.baseline_kw.tobytes(),
            event.requested_kw,
            event.price_yen_per_kwh,
            event.penalty_yen_per_kwh,
        ]
    if problem.assets:  # further kinds are not updated: any change of theirs, or of the start, builds again
        parts += [str(problem.grid.start), [_serialised(asset) for asset in problem.assets]]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _serialised(spec) -> list:
    """Every field of a spec, arrays as their bytes (a repr would abbreviate them)."""
    if not dataclasses.is_dataclass(spec):
        return [repr(spec)]
    return [type(spec).__name__] + [
        (
            f.name,
            getattr(spec, f.name).tobytes()
            if isinstance(getattr(spec, f.name), np.ndarray)
            else repr(getattr(spec, f.name)),
        )
        for f in dataclasses.fields(spec)
    ]


def _site_data_at(problem: Problem, site: str, steps: np.ndarray) -> bytes:
    """The site's forecasts and plug-in data in ``steps`` (they set the grid binary's limits)."""
    data = [pv.available_kw[steps] for pv in problem.pvs if pv.site == site]
    data += [ld.demand_kw[steps] for ld in problem.loads if ld.site == site]
    for ev in problem.evs:
        here = np.array([c == site for c in ev.charger_site])[steps]
        data += [here, ev.charge_max_kw[steps], ev.discharge_max_kw[steps]]
    return b"".join(np.asarray(d, dtype=float).tobytes() for d in data)


@dataclass
class _Maps:
    """Columns and rows of the numbers a re-plan writes, as index arrays (asset order of the problem)."""

    grid_import: np.ndarray  # [grid, t] -> column
    grid_export: np.ndarray
    pv: np.ndarray  # [curtailable pv, t]
    shed: np.ndarray  # shed columns, with their load's position and step
    shed_load: np.ndarray
    shed_step: np.ndarray
    battery_soc: np.ndarray  # [battery, t] for t = 0..steps
    ev_soc: np.ndarray
    ev_charge: np.ndarray  # [ev, t]
    ev_discharge: np.ndarray
    ev_drive: np.ndarray
    ev_balance: np.ndarray  # rows
    bus: np.ndarray  # [site, t] -> row (-1: no row)
    ev_site: np.ndarray  # [ev, t] -> the position of the site whose bus the vehicle is on now (-1: none)
    target_rows: list  # per ev: rows for its departure targets (as many as it had when built)
    target_cols: list  # per ev: the SoC column each target row reads now


@dataclass
class _Loaded:
    """A model loaded in HiGHS, with where each re-planned number sits in it."""

    key: str
    build: ModelBuild
    model: LoadedModel
    maps: _Maps
    other_constant: float  # the objective's constant less the terminal value of the initial energy
    start: np.ndarray | None = None  # a value per column for the MIP, from the previous plan
    values: np.ndarray | None = None  # the last plan's solution vector

    @property
    def highs(self) -> highspy.Highs:
        return self.model.highs


class Replanner:
    """Plans one problem after another, updating the loaded model when the structure allows.

    Calls are serialised (the loaded model is shared state). ``solve`` never raises for a solver
    fault (the rule-based fallback answers, as with :func:`ems.optimise.solve`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one solve at a time on the loaded model
        self._loaded: _Loaded | None = None
        self.builds = 0  # how many times a model was built and loaded
        self.updates = 0  # how many re-plans updated the loaded model

    def solve(self, problem: Problem) -> Schedule:
        with self._lock:
            return self._solve(problem)

    def _solve(self, problem: Problem) -> Schedule:
        problem.validate()
        key = structure_key(problem)
        started = time.perf_counter()
        loaded = self._loaded if self._loaded is not None and self._loaded.key == key else None
        if loaded is not None:
            try:
                _update(loaded, problem)
                build_s, load_s, cold = 0.0, time.perf_counter() - started, False
                self.updates += 1
            except _Rebuild as reason:
                log.debug("building the model again: %s", reason)
                loaded = None
            except Exception as error:  # never plan on a half-updated model: build afresh
                log.warning("updating the loaded model failed (%s: %s); building it again", type(error).__name__, error)
                loaded = None
        if loaded is None:
            previous, self._loaded = self._loaded, None
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
            if previous is not None and loaded.model.integer:
                loaded.start = _start_columns(loaded, _shifted_values(previous, problem))
        elif loaded.model.integer:
            loaded.start = _start_columns(loaded, _shifted_values(loaded, problem))
        schedule = run_highs(loaded.model, loaded.build, build_s, load_s, loaded.start)
        loaded.start = None
        if schedule.status == "fallback":
            self._loaded = None  # nothing to start from; build afresh next time
        else:
            loaded.values = solution_values(loaded.build.model)
            self._loaded = loaded
        schedule.report.model_reused = not cold
        return schedule


def _load(key: str, build: ModelBuild) -> _Loaded:
    """Hand the model to HiGHS once (compiled to matrices) and record the index maps of a re-plan."""
    m, problem = build.model, build.problem
    model = load_into_highs(compile_model(m))
    col_of, con_row = model.compiled.col_of, model.compiled.row_of

    def row_of(con) -> int:
        return con_row[id(con)]

    steps, sites = range(problem.grid.steps), {s: i for i, s in enumerate(problem.sites)}

    def cols(var, ids, times) -> np.ndarray:
        return np.array([[col_of[id(var[a, t])] for t in times] for a in ids], dtype=np.int32).reshape(
            len(ids), len(times)
        )

    def rows(con, ids, times) -> np.ndarray:
        return np.array([[row_of(con[a, t]) for t in times] for a in ids], dtype=np.int32).reshape(len(ids), len(times))

    grids, evs = [g.id for g in problem.grids], [ev.id for ev in problem.evs]
    loads = {ld.id: i for i, ld in enumerate(problem.loads)}
    shed_keys = list(m.load_shed_kw.keys())
    bus = np.full((len(sites), len(steps)), -1, dtype=np.int32)
    for (site, t), con in m.site_balance.items():
        bus[sites[site], t] = row_of(con)
    maps = _Maps(
        grid_import=cols(m.grid_import_kw, grids, steps),
        grid_export=cols(m.grid_export_kw, grids, steps),
        pv=cols(m.pv_kw, [pv.id for pv in problem.pvs if pv.curtailable], steps),
        shed=np.array([col_of[id(m.load_shed_kw[k])] for k in shed_keys], dtype=np.int32),
        shed_load=np.array([loads[k[0]] for k in shed_keys], dtype=int),
        shed_step=np.array([k[1] for k in shed_keys], dtype=int),
        battery_soc=cols(m.battery_soc_kwh, [b.id for b in problem.batteries], range(problem.grid.steps + 1)),
        ev_soc=cols(m.ev_soc_kwh, evs, range(problem.grid.steps + 1)),
        ev_charge=cols(m.ev_charge_kw, evs, steps),
        ev_discharge=cols(m.ev_discharge_kw, evs, steps),
        ev_drive=cols(m.ev_drive_shortfall_kwh, evs, steps),
        ev_balance=rows(m.ev_soc_balance, evs, steps),
        bus=bus,
        ev_site=_ev_sites(problem, sites),
        target_rows=[[row_of(m.ev_departure_target[ev.id, k]) for k, _e in ev.departure_targets] for ev in problem.evs],
        target_cols=[[col_of[id(m.ev_soc_kwh[ev.id, k])] for k, _e in ev.departure_targets] for ev in problem.evs],
    )
    other = float(sum(build.objective_constant.values())) - problem.settings.terminal_value_yen_per_kwh * _initial_kwh(
        problem
    )
    return _Loaded(key=key, build=build, model=model, maps=maps, other_constant=other)


def _initial_kwh(problem: Problem) -> float:
    return sum(b.initial_soc_kwh for b in problem.batteries) + sum(ev.initial_soc_kwh for ev in problem.evs)


def _ev_sites(problem: Problem, sites: dict, away_at_home: bool = True) -> np.ndarray:
    """[ev, t] -> position of the site whose bus the vehicle's flows are on (-1: none); while
    away, its home site's when ``away_at_home`` (as built), else -1 (as updated: left where they are)."""
    shape = (len(problem.evs), problem.grid.steps)
    if not away_at_home:  # the whole fleet through one look-up
        position = {**sites, None: -1}
        chargers = itertools.chain.from_iterable(ev.charger_site for ev in problem.evs)
        return np.fromiter(map(position.__getitem__, chargers), int, shape[0] * shape[1]).reshape(shape)
    rows = []
    for ev in problem.evs:
        home = home_site(ev)
        position = {**sites, None: sites[home] if home is not None else -1}
        rows.append(list(map(position.__getitem__, ev.charger_site)))
    return np.array(rows, dtype=int).reshape(shape)


def _update(loaded: _Loaded, problem: Problem) -> None:
    """Write the numbers of ``problem`` that differ from re-plan to re-plan into the loaded model."""
    h, maps, dt_h = loaded.highs, loaded.maps, problem.grid.step_h
    steps = problem.grid.steps
    for ev, rows in zip(problem.evs, maps.target_rows, strict=True):
        if len(ev.departure_targets) > len(rows):
            raise _Rebuild(
                f"{ev.id}: {len(ev.departure_targets)} departure targets, the model has rows for {len(rows)}"
            )
    import_cost = np.array(
        [(g.import_price_yen_per_kwh + g.co2_kg_per_kwh * g.carbon_price_yen_per_kg) * dt_h for g in problem.grids]
    ).reshape(maps.grid_import.shape)
    export_cost = np.array([-g.export_price_yen_per_kwh * dt_h for g in problem.grids]).reshape(maps.grid_export.shape)
    terminal = np.concatenate(
        [maps.battery_soc[:, -1], maps.ev_soc[:, -1]]
    )  # the energy left is worth the terminal value
    _costs(
        loaded,
        np.concatenate([maps.grid_import.ravel(), maps.grid_export.ravel(), terminal]),
        np.concatenate(
            [
                import_cost.ravel(),
                export_cost.ravel(),
                np.full(len(terminal), -problem.settings.terminal_value_yen_per_kwh),
            ]
        ),
    )

    columns, lower, upper = [], [], []
    bounded_rows: list[np.ndarray] = []  # rows' bounds, written at once at the end (each HiGHS call has its cost)
    row_lower: list[np.ndarray] = []
    row_upper: list[np.ndarray] = []

    def bound(cols: np.ndarray, lo, hi) -> None:
        columns.append(cols.ravel())
        lower.append(np.broadcast_to(np.asarray(lo, dtype=float), cols.shape).ravel())
        upper.append(np.broadcast_to(np.asarray(hi, dtype=float), cols.shape).ravel())

    def row_bound(at: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        bounded_rows.append(at.astype(np.int64))
        row_lower.append(lo.astype(float))
        row_upper.append(hi.astype(float))

    curtailable = [pv.available_kw for pv in problem.pvs if pv.curtailable]
    bound(maps.pv, 0.0, np.array(curtailable).reshape(maps.pv.shape))
    demand = np.array([ld.demand_kw for ld in problem.loads]).reshape(len(problem.loads), steps)
    bound(maps.shed, 0.0, demand[maps.shed_load, maps.shed_step] if len(maps.shed) else np.zeros(0))
    for soc, stores in ((maps.battery_soc, problem.batteries), (maps.ev_soc, problem.evs)):
        if stores:  # the first energy fixed, the bounds widened to include it
            lowest, highest = _soc_bounds(stores, soc.shape[1])
            bound(soc, lowest, highest)
    if problem.evs:
        bound(maps.ev_charge, 0.0, np.array([ev.charge_max_kw for ev in problem.evs]))
        bound(maps.ev_discharge, 0.0, np.array([ev.discharge_max_kw for ev in problem.evs]))
        drive = np.array([ev.drive_kwh for ev in problem.evs], dtype=float)
        bound(maps.ev_drive, 0.0, drive)
        row_bound(
            maps.ev_balance.ravel(), -drive.ravel(), -drive.ravel()
        )  # soc[t+1] - soc[t] - ... - shortfall = -drive
        _move_to_buses(h, maps, _ev_sites(problem, {s: i for i, s in enumerate(problem.sites)}, away_at_home=False))
        row_bound(*_move_targets(loaded, problem))
    if columns:
        _col_bounds(loaded, np.concatenate(columns), np.concatenate(lower), np.concatenate(upper))
    constant = _bus_constants(problem)
    present = maps.bus >= 0
    row_bound(maps.bus[present], -constant[present], -constant[present])
    _row_bounds(loaded, np.concatenate(bounded_rows), np.concatenate(row_lower), np.concatenate(row_upper))

    h.changeObjectiveOffset(loaded.other_constant + problem.settings.terminal_value_yen_per_kwh * _initial_kwh(problem))
    loaded.build.problem = problem  # read-back maps the solution onto the new problem's assets


def _soc_bounds(stores: tuple[BatterySpec, ...] | tuple[EvSpec, ...], levels: int) -> tuple[np.ndarray, np.ndarray]:
    """[store, level] -> the energy's bounds: the first level fixed at the initial energy, the
    others between the limits widened to include it."""
    initial = np.array([store.initial_soc_kwh for store in stores], dtype=float)
    lower = np.minimum(np.array([store.soc_min_kwh for store in stores], dtype=float), initial)
    upper = np.maximum(np.array([store.soc_max_kwh for store in stores], dtype=float), initial)
    lower, upper = np.repeat(lower[:, None], levels, axis=1), np.repeat(upper[:, None], levels, axis=1)
    lower[:, 0] = upper[:, 0] = initial
    return lower, upper


def _costs(loaded: _Loaded, cols: np.ndarray, values: np.ndarray) -> None:
    """Write the costs that differ from those HiGHS holds (a rolling plan moves few of them)."""
    held = loaded.model.compiled.col_cost
    values = values.astype(float)
    changed = held[cols] != values
    if changed.any():
        cols, values = cols[changed], values[changed]
        loaded.highs.changeColsCost(len(cols), cols.astype(np.int32), values)
        held[cols] = values


def _col_bounds(loaded: _Loaded, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
    """Write the column bounds that differ from those HiGHS holds."""
    compiled = loaded.model.compiled
    changed = (compiled.col_lower[cols] != lower) | (compiled.col_upper[cols] != upper)
    if changed.any():
        cols, lower, upper = cols[changed], lower[changed], upper[changed]
        loaded.highs.changeColsBounds(len(cols), cols.astype(np.int32), lower, upper)
        compiled.col_lower[cols], compiled.col_upper[cols] = lower, upper


def _row_bounds(loaded: _Loaded, rows: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
    """Write the row bounds that differ from those HiGHS holds."""
    compiled = loaded.model.compiled
    lower, upper = lower.astype(float), upper.astype(float)
    changed = (compiled.row_lower[rows] != lower) | (compiled.row_upper[rows] != upper)
    if changed.any():
        rows, lower, upper = rows[changed], lower[changed], upper[changed]
        # (highspy's type stubs lack changeRowsBounds; it is there since 1.7)
        loaded.highs.changeRowsBounds(len(rows), rows.astype(np.int32), lower, upper)  # type: ignore[attr-defined]
        compiled.row_lower[rows], compiled.row_upper[rows] = lower, upper


def _move_to_buses(h: highspy.Highs, maps: _Maps, sites: np.ndarray) -> None:
    """Put each vehicle's charge and discharge on the bus of the site it is plugged in at; only
    the steps whose site changed are touched (each change shifts HiGHS's matrix). While away they
    stay where they are: their bounds are 0."""
    for i, t in zip(*np.nonzero((sites >= 0) & (sites != maps.ev_site)), strict=True):
        old, new = maps.ev_site[i, t], sites[i, t]
        for column, coef in ((maps.ev_charge[i, t], -1.0), (maps.ev_discharge[i, t], 1.0)):
            if old >= 0:
                h.changeCoeff(int(maps.bus[old, t]), int(column), 0.0)
            if new >= 0:
                h.changeCoeff(int(maps.bus[new, t]), int(column), coef)
        maps.ev_site[i, t] = new


class _Rebuild(Exception):
    """The problem does not fit the loaded model after all."""


def _move_targets(loaded: _Loaded, problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each departure target takes one of the vehicle's target rows, reading the SoC of its
    departure step at its energy; rows left over are freed (targets leave the horizon as it
    moves on, new ones take their rows). Returns the rows and their bounds, to be written."""
    h, maps = loaded.highs, loaded.maps
    rows, lower, upper = [], [], []
    for i, ev in enumerate(problem.evs):
        for j, row in enumerate(maps.target_rows[i]):
            rows.append(row)
            if j >= len(ev.departure_targets):
                lower.append(-highspy.kHighsInf)
                upper.append(highspy.kHighsInf)
                continue
            k, energy = ev.departure_targets[j]
            column = int(maps.ev_soc[i, k])
            if maps.target_cols[i][j] != column:
                h.changeCoeff(row, maps.target_cols[i][j], 0.0)
                h.changeCoeff(row, column, 1.0)
                maps.target_cols[i][j] = column
            lower.append(float(energy))
            upper.append(highspy.kHighsInf)
    return np.array(rows, dtype=np.int64), np.array(lower, dtype=float), np.array(upper, dtype=float)


def _bus_constants(problem: Problem) -> np.ndarray:
    """[site, t] -> the bus's constant [kW]: PV that cannot be curtailed less the demand."""
    sites = {s: i for i, s in enumerate(problem.sites)}
    constant = np.zeros((len(sites), problem.grid.steps))
    for pv in problem.pvs:
        if not pv.curtailable:
            constant[sites[pv.site]] += pv.available_kw
    for load in problem.loads:
        constant[sites[load.site]] -= load.demand_kw
    return constant


def _shifted_values(previous: _Loaded, problem: Problem) -> dict:
    """The previous plan's values keyed (component, index), moved to the new problem's steps (a
    plan one step later reads the previous plan's step 1 as its step 0)."""
    old = previous.build.problem
    shift = round((problem.grid.start - old.grid.start) / pd.Timedelta(minutes=problem.grid.step_minutes))
    values: dict = {}
    if previous.values is None:
        return values
    for name, (keys, cols) in previous.model.compiled.var_columns.items():
        for index, value in zip(keys, previous.values[cols].tolist(), strict=True):
            if isinstance(index, tuple) and index and isinstance(index[-1], int):
                index = (*index[:-1], index[-1] - shift)
            values[(name, index)] = value
    return values


def _start_columns(loaded: _Loaded, values: dict) -> np.ndarray:
    """A start for every column: the previous value where there is one; a binary the previous
    plan had no value for follows its flows there (on when the first flow is the larger), the
    rest 0. HiGHS repairs what does not fit."""
    start = np.zeros(loaded.model.compiled.col_lower.shape[0])
    for name, (keys, cols) in loaded.model.compiled.var_columns.items():
        for index, column in zip(keys, cols.tolist(), strict=True):
            value = values.get((name, index))
            if value is None and name.endswith("_on"):
                first, second = _exclusive_pair(name)
                value = float((values.get((first, index)) or 0.0) >= (values.get((second, index)) or 0.0))
            start[column] = value if value is not None else 0.0
    return start


def _exclusive_pair(binary: str) -> tuple[str, str]:
    """The two flows an exclusivity binary chooses between (``add_exclusive_flows``)."""
    return {
        "grid_importing_on": ("grid_import_kw", "grid_export_kw"),
        "battery_charging_on": ("battery_charge_kw", "battery_discharge_kw"),
        "ev_charging_on": ("ev_charge_kw", "ev_discharge_kw"),
    }.get(binary, ("", ""))
