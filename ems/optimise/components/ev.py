"""EV on a (bidirectional) charger, following the fleet's plug-in windows.

    soc_kwh[v,t+1] = soc_kwh[v,t] + charge_efficiency * charge_kw[v,t] * dt
                     - discharge_kw[v,t] / discharge_efficiency * dt
                     - drive_kwh[v,t] + drive_shortfall_kwh[v,t]                   (``ev_soc_balance``)
    charge_kw, discharge_kw and drive_shortfall_kwh exist in every step, bounded by 0 where the
    vehicle is away, is not driving, or V2G is not allowed by the vehicle or the charger (so a
    re-plan with new plug-in windows keeps the model's shape: only bounds and the bus change).
    soc_kwh[v,k] + target_shortfall_kwh[v,k] >= departure energy at each departure k (``ev_departure_target``)
    soc_kwh[v,t] + keep_shortfall_kwh[v,t] >= keep_energy_kwh (a reservation)       (``ev_keep_energy``)
    discharge_kw - charge_kw enters the bus of the charger's site                   [kW]
      (while away, the bus of the vehicle's most frequent site, ``home_site``; both are 0 there)

Shortfalls are priced slack: a target that cannot be met is reported, not infeasible. The drive
shortfall is energy a duty needed that the battery could not hold (a large penalty).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression
from pyomo.core.expr.numeric_expr import MonomialTermExpression as Monomial
from pyomo.core.expr.relational_expr import EqualityExpression, InequalityExpression

from ems.optimise.build import ModelBuild, add_exclusive_flows
from ems.optimise.components.base import (
    Component,
    Evaluation,
    RuleState,
    ScheduleRows,
    SeriesCheck,
    SiteStep,
    frame_rows,
    storage_soc_rows,
    var_array,
)
from ems.optimise.problem import Problem, ProblemError

if TYPE_CHECKING:
    from ems.config.schema import Portfolio


def add_ev_constraints(build: ModelBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    evs = problem.evs
    steps = problem.grid.steps
    # One index set per shape, shared by the variables and rows on it (vehicle-major, as the
    # re-planner and the read-back take them), and every per-step number read once as a list.
    m.ev_ids = pyo.Set(initialize=[ev.id for ev in evs], ordered=True)
    m.ev_steps = pyo.RangeSet(0, steps - 1)
    m.ev_levels = pyo.RangeSet(0, steps)
    m.ev_step_index = m.ev_ids * m.ev_steps
    m.ev_level_index = m.ev_ids * m.ev_levels
    charge_max = [float(x) for ev in evs for x in ev.charge_max_kw.tolist()]
    discharge_max = [float(x) for ev in evs for x in ev.discharge_max_kw.tolist()]
    drive = [float(x) for ev in evs for x in ev.drive_kwh.tolist()]

    m.ev_charge_kw = pyo.Var(m.ev_step_index, bounds=(0.0, None))
    m.ev_discharge_kw = pyo.Var(m.ev_step_index, bounds=(0.0, None))
    m.ev_drive_shortfall_kwh = pyo.Var(m.ev_step_index, bounds=(0.0, None))
    m.ev_soc_kwh = pyo.Var(m.ev_level_index)
    charge, discharge = list(m.ev_charge_kw.values()), list(m.ev_discharge_kw.values())
    shortfall, soc = list(m.ev_drive_shortfall_kwh.values()), list(m.ev_soc_kwh.values())
    for var_list, upper in ((charge, charge_max), (discharge, discharge_max), (shortfall, drive)):
        for var, bound in zip(var_list, upper, strict=True):
            var.setub(bound)
    for i, ev in enumerate(evs):
        bounds = (min(ev.soc_min_kwh, ev.initial_soc_kwh), max(ev.soc_max_kwh, ev.initial_soc_kwh))
        for var in soc[i * (steps + 1) : (i + 1) * (steps + 1)]:
            var.setlb(bounds[0])
            var.setub(bounds[1])
        soc[i * (steps + 1)].fix(ev.initial_soc_kwh)

    position = {ev.id: i for i, ev in enumerate(evs)}
    charge_coef = [-(ev.charge_efficiency * dt_h) for ev in evs]
    discharge_coef = [dt_h / ev.discharge_efficiency for ev in evs]

    def soc_balance(_m, v, t):  # soc[t+1] - soc[t] - eta_c dt charge + dt/eta_d discharge - shortfall = -drive
        i = position[v]
        k, level = i * steps + t, i * (steps + 1) + t
        return EqualityExpression(
            (
                LinearExpression(
                    [
                        soc[level + 1],
                        Monomial((-1.0, soc[level])),
                        Monomial((charge_coef[i], charge[k])),
                        Monomial((discharge_coef[i], discharge[k])),
                        Monomial((-1.0, shortfall[k])),
                    ]
                ),
                -drive[k],
            )
        )

    m.ev_soc_balance = pyo.Constraint(m.ev_step_index, rule=soc_balance)

    binary_index = [
        (ev.id, t) for ev in evs for t in range(steps) if ev.discharge_max_kw[t] > 0 and build.storage_binary_steps[t]
    ]
    add_exclusive_flows(
        m,
        "ev_charging",
        binary_index,
        m.ev_charge_kw,
        lambda k: charge_max[position[k[0]] * steps + k[1]],
        m.ev_discharge_kw,
        lambda k: discharge_max[position[k[0]] * steps + k[1]],
    )

    target_index = [(ev.id, k) for ev in evs for k, _e in ev.departure_targets]
    targets = {(ev.id, k): energy for ev in evs for k, energy in ev.departure_targets}
    m.ev_target_shortfall_kwh = pyo.Var(target_index, bounds=(0.0, None))
    m.ev_departure_target = pyo.Constraint(
        target_index, rule=lambda _m, v, k: _m.ev_soc_kwh[v, k] + _m.ev_target_shortfall_kwh[v, k] >= targets[v, k]
    )

    keep_index = [(ev.id, t) for ev in evs if ev.keep_energy_kwh > ev.soc_min_kwh for t in range(1, steps + 1)]
    m.ev_keep_shortfall_kwh = pyo.Var(keep_index, bounds=(0.0, None))
    keep_shortfall = dict(zip(keep_index, m.ev_keep_shortfall_kwh.values(), strict=True))
    keep_kwh = [ev.keep_energy_kwh for ev in evs]

    def keep_energy(_m, v, t):  # soc[t] + keep_shortfall[t] >= keep_energy_kwh
        i = position[v]
        return InequalityExpression(
            (keep_kwh[i], LinearExpression([soc[i * (steps + 1) + t], keep_shortfall[v, t]])), False
        )

    m.ev_keep_energy = pyo.Constraint(keep_index, rule=keep_energy)

    _book_ev_costs_and_bus(build, charge, discharge, shortfall, soc)


def home_site(ev) -> str | None:
    """The site the vehicle charges at most often in the horizon (None if it never plugs in).
    While away, its charge and discharge (bounded by 0) sit on that site's bus, so a re-plan
    whose windows moved finds them already there."""
    sites = [site for site in ev.charger_site if site is not None]
    return max(sorted(set(sites)), key=sites.count) if sites else None


def _book_ev_costs_and_bus(build: ModelBuild, charge: list, discharge: list, shortfall: list, soc: list) -> None:
    """Book the flows into the buses and every cost; variables as lists in the vehicle-major order."""
    m, settings, dt_h = build.model, build.problem.settings, build.step_h
    evs, steps = build.problem.evs, build.problem.grid.steps
    for i, ev in enumerate(evs):
        home = home_site(ev)
        for t, site in enumerate(ev.charger_site):
            site = site or home
            if site is not None:
                build.into_bus(site, t, -1.0, charge[i * steps + t])
                build.into_bus(site, t, 1.0, discharge[i * steps + t])
    epsilon = settings.throughput_epsilon_yen_per_kwh * dt_h
    build.costs("throughput_epsilon_yen", epsilon, charge)
    build.costs("throughput_epsilon_yen", epsilon, discharge)
    build.costs("drive_shortfall_yen", settings.drive_shortfall_penalty_yen_per_kwh, shortfall)
    build.costs("ev_shortfall_yen", settings.ev_shortfall_penalty_yen_per_kwh, list(m.ev_target_shortfall_kwh.values()))
    build.costs(
        "bcp_shortfall_yen", settings.bcp_shortfall_penalty_yen_per_kwh * dt_h, list(m.ev_keep_shortfall_kwh.values())
    )
    for i, ev in enumerate(evs):
        build.cost("terminal_value_yen", -settings.terminal_value_yen_per_kwh, soc[i * (steps + 1) + steps])
        build.objective_constant["terminal_value_yen"] += settings.terminal_value_yen_per_kwh * ev.initial_soc_kwh


_WINDOW_SERIES = ("charge_max_kw", "discharge_max_kw", "drive_kwh")


def _window_faults(evs, sites, steps: int) -> np.ndarray:
    """[vehicle] -> the first step of each window fault: power without a charger, a charger at an
    unknown site, driving while plugged in (``steps``: none). The fleet at once; every vehicle's
    series must have ``steps`` entries."""
    code = {site: 1 for site in sites} | {None: 0}  # 0: away, 1: at a known site, -1: anywhere else
    chargers = itertools.chain.from_iterable(ev.charger_site for ev in evs)
    codes = np.fromiter(map(code.get, chargers, itertools.repeat(-1)), int, len(evs) * steps).reshape(len(evs), steps)
    away = codes == 0
    charge, discharge, drive = (
        np.array([getattr(ev, name) for ev in evs], dtype=float).reshape(len(evs), steps) for name in _WINDOW_SERIES
    )
    faults = (away & ((charge > 0) | (discharge > 0)), codes < 0, ~away & (drive > 0))
    return np.stack([np.where(fault.any(axis=1), fault.argmax(axis=1), steps) for fault in faults], axis=1)


def _raise_window_fault(ev, first: np.ndarray, steps: int) -> None:
    """Power only where plugged in, at a known site, and no driving there: the first step that
    breaks one, in step order (``first``: its row of ``_window_faults``)."""
    t = int(first.min())
    if t == steps:
        return
    if first[0] == t:
        raise ProblemError(f"{ev.id}: step {t} has charger power but no charger")
    if first[1] == t:
        raise ProblemError(f"{ev.id}: charger site {ev.charger_site[t]!r} is not in the problem")
    raise ProblemError(f"{ev.id}: step {t} is both plugged in and driving")


def _flows(build: ModelBuild) -> tuple[np.ndarray, np.ndarray]:
    """Charge and discharge [kW], one row per vehicle (the variables are vehicle-major)."""
    shape = (len(build.problem.evs), build.problem.grid.steps)
    return var_array(build.model.ev_charge_kw, shape), var_array(build.model.ev_discharge_kw, shape)


class EvComponent(Component):
    """Rule-based: charge at full power from plug-in until full, never discharge; past the
    import limit the site's EV charging is cut first (pro rata). Set-point: a charger takes the
    planned power of the vehicle plugged into it (0 with none)."""

    kind = "ev"
    objective_terms = (
        "throughput_epsilon_yen",
        "ev_shortfall_yen",
        "drive_shortfall_yen",
        "bcp_shortfall_yen",
        "terminal_value_yen",
    )
    import_relief_rank = 10

    def specs(self, problem: Problem) -> tuple:
        return problem.evs

    def validate(self, problem: Problem, check_series: SeriesCheck) -> None:
        steps = problem.grid.steps
        # the fleet's windows found at once when every series is as it should be (else each vehicle's
        # below, once its own series have been checked)
        windows = None
        if all(
            len(ev.charger_site) == steps and all(np.shape(getattr(ev, name)) == (steps,) for name in _WINDOW_SERIES)
            for ev in problem.evs
        ):
            try:
                windows = _window_faults(problem.evs, problem.sites, steps)
            except (TypeError, ValueError):  # values that are not numbers: the checks below name them
                windows = None
        for i, ev in enumerate(problem.evs):
            if len(ev.charger_site) != steps or len(ev.charger_id) != steps:
                raise ProblemError(f"{ev.id}: charger_site/charger_id need one entry per step")
            check_series(ev.id, "charge_max_kw", ev.charge_max_kw, nonnegative=True)
            check_series(ev.id, "discharge_max_kw", ev.discharge_max_kw, nonnegative=True)
            check_series(ev.id, "drive_kwh", ev.drive_kwh, nonnegative=True)
            if not 0 <= ev.soc_min_kwh < ev.soc_max_kwh <= ev.capacity_kwh:
                raise ProblemError(f"{ev.id}: needs 0 <= soc_min_kwh < soc_max_kwh <= capacity_kwh")
            if not 0 <= ev.initial_soc_kwh <= ev.capacity_kwh:
                raise ProblemError(f"{ev.id}: initial_soc_kwh {ev.initial_soc_kwh} outside 0..{ev.capacity_kwh}")
            _raise_window_fault(
                ev, windows[i] if windows is not None else _window_faults((ev,), problem.sites, steps)[0], steps
            )
            for t, energy in ev.departure_targets:
                if not 0 <= t <= steps:
                    raise ProblemError(f"{ev.id}: departure step {t} outside the horizon")
                if energy > ev.capacity_kwh:
                    raise ProblemError(f"{ev.id}: departure target {energy} kWh exceeds the battery")

    def build(self, build: ModelBuild) -> None:
        add_ev_constraints(build)

    def read_power(self, build: ModelBuild) -> dict[str, np.ndarray]:
        charge, discharge = _flows(build)
        return dict(zip((ev.id for ev in build.problem.evs), discharge - charge, strict=True))

    def read_soc(self, build: ModelBuild) -> dict[str, np.ndarray]:
        evs = build.problem.evs
        soc = var_array(build.model.ev_soc_kwh, (len(evs), build.problem.grid.steps + 1))
        return dict(zip((ev.id for ev in evs), soc[:, 1:], strict=True))

    def simultaneous_flows_kw(self, build: ModelBuild) -> dict[str, float]:
        charge, discharge = _flows(build)
        both = float(np.minimum(charge, discharge).max()) if charge.size else 0.0
        return {"simultaneous_charge_discharge_kw": both}

    def binary_count(self, build: ModelBuild) -> int:
        return len(build.model.ev_charging_on)

    def evaluate(self, problem: Problem, power_kw: pd.DataFrame, ledger: Evaluation) -> None:
        s, dt_h, terms, report = problem.settings, problem.grid.step_h, ledger.terms, ledger.report
        evs = problem.evs
        if not evs:
            return
        # the fleet's energy in one pass (a row per vehicle); the terms summed vehicle by vehicle
        power = frame_rows(power_kw, [ev.id for ev in evs])
        initial = np.array([ev.initial_soc_kwh for ev in evs])
        soc, drive_short = storage_soc_rows(
            initial,
            power,
            dt_h,
            np.array([ev.charge_efficiency for ev in evs]),
            np.array([ev.discharge_efficiency for ev in evs]),
            np.array([ev.drive_kwh for ev in evs], dtype=float),
            np.array([min(ev.soc_min_kwh, ev.initial_soc_kwh) for ev in evs]),
        )
        # each row's sum as the row's own
        discharged, charged = np.clip(power, 0, None).sum(axis=1), np.clip(-power, 0, None).sum(axis=1)
        drive_short_kwh = drive_short.sum(axis=1)
        for i, ev in enumerate(evs):
            ledger.soc_kwh[ev.id] = soc[i]
            terms["throughput_epsilon_yen"] += (
                s.throughput_epsilon_yen_per_kwh * dt_h * float(discharged[i] + charged[i])
            )
            shortfall_kwh = float(drive_short_kwh[i])
            report.drive_shortfall_kwh += shortfall_kwh
            terms["drive_shortfall_yen"] += s.drive_shortfall_penalty_yen_per_kwh * shortfall_kwh
            # energy at the start of step k: the initial energy, then the end of step k - 1
            target_short = sum(
                max(0.0, energy - (ev.initial_soc_kwh if k == 0 else float(soc[i, k - 1])))
                for k, energy in ev.departure_targets
            )
            report.ev_target_shortfall_kwh += target_short
            terms["ev_shortfall_yen"] += s.ev_shortfall_penalty_yen_per_kwh * target_short
            if ev.keep_energy_kwh > ev.soc_min_kwh:
                short = float(np.clip(ev.keep_energy_kwh - soc[i], 0, None).sum())
                report.bcp_shortfall_kwh_h += short * dt_h
                terms["bcp_shortfall_yen"] += s.bcp_shortfall_penalty_yen_per_kwh * dt_h * short
            terms["terminal_value_yen"] -= s.terminal_value_yen_per_kwh * (soc[i, -1] - ev.initial_soc_kwh)

    def rule_start(self, state: RuleState) -> None:
        state.power |= {ev.id: np.zeros(state.problem.grid.steps) for ev in state.problem.evs}
        state.carry["ev_soc_kwh"] = {ev.id: ev.initial_soc_kwh for ev in state.problem.evs}

    def rule_begin_step(self, state: RuleState, t: int) -> None:
        soc, dt_h = state.carry["ev_soc_kwh"], state.dt_h
        state.carry["ev_charge_kw"] = {
            ev.id: min(
                float(ev.charge_max_kw[t]), max(0.0, ev.soc_max_kwh - soc[ev.id]) / (ev.charge_efficiency * dt_h)
            )
            for ev in state.problem.evs
        }

    def _at_site(self, state: RuleState, step: SiteStep) -> list:
        return [ev for ev in state.problem.evs if ev.charger_site[step.t] == step.site]

    def rule_demand(self, state: RuleState, step: SiteStep) -> None:
        step.deficit_kw += sum(state.carry["ev_charge_kw"][ev.id] for ev in self._at_site(state, step))

    def rule_relieve_import(self, state: RuleState, step: SiteStep, excess_kw: float) -> float:
        charge = state.carry["ev_charge_kw"]
        site_evs = self._at_site(state, step)
        ev_kw = sum(charge[ev.id] for ev in site_evs)
        if ev_kw <= 0:
            return 0.0
        cut = min(ev_kw, excess_kw)
        for ev in site_evs:
            charge[ev.id] *= 1 - cut / ev_kw
        return cut

    def rule_end_step(self, state: RuleState, t: int) -> None:
        charge, soc = state.carry["ev_charge_kw"], state.carry["ev_soc_kwh"]
        for ev in state.problem.evs:
            state.power[ev.id][t] = -charge[ev.id]
            soc[ev.id] += ev.charge_efficiency * charge[ev.id] * state.dt_h - float(ev.drive_kwh[t])
            soc[ev.id] = max(soc[ev.id], min(ev.soc_min_kwh, ev.initial_soc_kwh))

    def schedule_rows(self, problem: Problem, soc_kwh: pd.DataFrame) -> Iterable[ScheduleRows]:
        return [
            ScheduleRows(ev.id, self.kind, [site or "" for site in ev.charger_site], soc_kwh[ev.id].to_numpy())
            for ev in problem.evs
        ]

    def writable_devices(self, portfolio: Portfolio) -> set[str]:
        return {c.id for c in portfolio.chargers}

    def setpoints_kw(
        self, row: pd.Series | None, devices: set[str], plugged: Mapping[str, str | None]
    ) -> dict[str, float]:
        targets = dict.fromkeys(devices, 0.0)
        for vehicle, charger in plugged.items():
            if charger in devices and row is not None and vehicle in row:
                targets[charger] = float(row[vehicle])
        return targets

    def failsafe_kw(self, portfolio: Portfolio, device: str) -> float | None:
        """Its configured failsafe; by default charge-only at ``control.charger_failsafe_kw`` or
        its rating if lower (never discharge)."""
        for charger in portfolio.chargers:
            if charger.id == device:
                if charger.failsafe_kw is not None:
                    return charger.failsafe_kw
                return -min(portfolio.control.charger_failsafe_kw, charger.charge_power_kw)
        return None
