"""Stationary battery.

    soc_kwh[b,t+1] = soc_kwh[b,t] + charge_efficiency * charge_kw[b,t] * dt
                                 - discharge_kw[b,t] / discharge_efficiency * dt   (``battery_soc_balance``)
    soc_kwh[b,0] = initial_soc_kwh;  soc_min_kwh <= soc_kwh <= soc_max_kwh
    0 <= charge_kw <= charge_max_kw,  0 <= discharge_kw <= discharge_max_kw
    discharge_kw - charge_kw enters the site bus                                   [kW]
    no simultaneous charge and discharge: a binary per step only where it can pay
      (``storage_binary_steps``); elsewhere losses and the throughput cost make the LP avoid it.
    BCP reserve: soc_kwh[b,t] + reserve_shortfall_kwh[b,t] >= reserve_kwh            (``battery_bcp_reserve``)

Costs: degradation per kWh discharged, a tiny throughput tie-breaker, the priced reserve
shortfall (per kWh and hour), and minus the terminal value of the energy left at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.optimise.build import ModelBuild, add_exclusive_flows, add_storage
from ems.optimise.components.base import (
    Component,
    Evaluation,
    PortfolioInputs,
    RuleState,
    ScheduleRows,
    SeriesCheck,
    SiteStep,
    frame_rows,
    storage_soc_rows,
    var_array,
)
from ems.optimise.problem import BatterySpec, Problem, ProblemError

if TYPE_CHECKING:
    from ems.config.schema import Portfolio


def add_battery_constraints(build: ModelBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    settings = problem.settings
    batteries = {b.id: b for b in problem.batteries}
    steps = list(build.steps)
    add_storage(m, "battery", batteries, len(steps), dt_h)

    binary_index = [(b, t) for b in batteries for t in steps if build.storage_binary_steps[t]]
    add_exclusive_flows(
        m,
        "battery_charging",
        binary_index,
        m.battery_charge_kw,
        lambda k: batteries[k[0]].charge_max_kw,
        m.battery_discharge_kw,
        lambda k: batteries[k[0]].discharge_max_kw,
    )

    reserve_index = [
        (b, t) for b, s in batteries.items() if s.reserve_kwh > s.soc_min_kwh for t in range(1, len(steps) + 1)
    ]
    m.battery_reserve_shortfall_kwh = pyo.Var(reserve_index, bounds=(0.0, None))
    m.battery_bcp_reserve = pyo.Constraint(
        reserve_index,
        rule=lambda _m, b, t: (
            _m.battery_soc_kwh[b, t] + _m.battery_reserve_shortfall_kwh[b, t] >= batteries[b].reserve_kwh
        ),
    )
    for key in reserve_index:
        build.cost(
            "bcp_shortfall_yen", settings.bcp_shortfall_penalty_yen_per_kwh * dt_h, m.battery_reserve_shortfall_kwh[key]
        )

    for b, spec in batteries.items():
        for t in steps:
            charge, discharge = m.battery_charge_kw[b, t], m.battery_discharge_kw[b, t]
            build.into_bus(spec.site, t, 1.0, discharge)
            build.into_bus(spec.site, t, -1.0, charge)
            build.cost("degradation_yen", spec.degradation_yen_per_kwh * dt_h, discharge)
            build.cost("throughput_epsilon_yen", settings.throughput_epsilon_yen_per_kwh * dt_h, charge)
            build.cost("throughput_epsilon_yen", settings.throughput_epsilon_yen_per_kwh * dt_h, discharge)
        build.cost("terminal_value_yen", -settings.terminal_value_yen_per_kwh, m.battery_soc_kwh[b, len(steps)])
        build.objective_constant["terminal_value_yen"] += settings.terminal_value_yen_per_kwh * spec.initial_soc_kwh


def _flows(build: ModelBuild) -> tuple[np.ndarray, np.ndarray]:
    """Charge and discharge [kW], one row per battery (the variables are battery-major)."""
    shape = (len(build.problem.batteries), build.problem.grid.steps)
    return var_array(build.model.battery_charge_kw, shape), var_array(build.model.battery_discharge_kw, shape)


class BatteryComponent(Component):
    """Rule-based: self-consumption (charge from the site's surplus, discharge to cover its
    deficit, never below the BCP reserve). Set-point: the planned power of the battery itself."""

    kind = "battery"
    objective_terms = ("degradation_yen", "throughput_epsilon_yen", "bcp_shortfall_yen", "terminal_value_yen")

    def specs(self, problem: Problem) -> tuple:
        return problem.batteries

    def specs_from_portfolio(self, inputs: PortfolioInputs) -> tuple:
        """Energies from the capacity and its fractions; the measured energy, else the configured start."""
        return tuple(
            BatterySpec(
                id=b.id,
                site=b.site,
                capacity_kwh=b.capacity_kwh,
                soc_min_kwh=b.capacity_kwh * b.soc_min_fraction,
                soc_max_kwh=b.capacity_kwh * b.soc_max_fraction,
                charge_max_kw=b.charge_power_kw,
                discharge_max_kw=b.discharge_power_kw,
                charge_efficiency=b.charge_efficiency,
                discharge_efficiency=b.discharge_efficiency,
                initial_soc_kwh=inputs.initial_soc_kwh.get(b.id, b.capacity_kwh * b.initial_soc_fraction),
                degradation_yen_per_kwh=b.degradation_cost_yen_per_kwh,
                reserve_kwh=b.bcp_reserve_kwh,
            )
            for b in inputs.portfolio.batteries
            if b.id not in inputs.unavailable
        )

    def validate(self, problem: Problem, check_series: SeriesCheck) -> None:
        for b in problem.batteries:
            if b.site not in problem.sites:
                raise ProblemError(f"{b.id}: site {b.site!r} is not in the problem")
            if not 0 <= b.soc_min_kwh < b.soc_max_kwh <= b.capacity_kwh:
                raise ProblemError(f"{b.id}: needs 0 <= soc_min_kwh < soc_max_kwh <= capacity_kwh")
            if not 0 <= b.initial_soc_kwh <= b.capacity_kwh:
                raise ProblemError(f"{b.id}: initial_soc_kwh {b.initial_soc_kwh} outside 0..{b.capacity_kwh}")

    def build(self, build: ModelBuild) -> None:
        add_battery_constraints(build)

    def read_power(self, build: ModelBuild) -> dict[str, np.ndarray]:
        charge, discharge = _flows(build)
        return dict(zip((b.id for b in build.problem.batteries), discharge - charge, strict=True))

    def read_soc(self, build: ModelBuild) -> dict[str, np.ndarray]:
        batteries = build.problem.batteries
        soc = var_array(build.model.battery_soc_kwh, (len(batteries), build.problem.grid.steps + 1))
        return dict(zip((b.id for b in batteries), soc[:, 1:], strict=True))

    def simultaneous_flows_kw(self, build: ModelBuild) -> dict[str, float]:
        charge, discharge = _flows(build)
        return {"simultaneous_charge_discharge_kw": float(np.minimum(charge, discharge).max()) if charge.size else 0.0}

    def binary_count(self, build: ModelBuild) -> int:
        return len(build.model.battery_charging_on)

    def evaluate(self, problem: Problem, power_kw: pd.DataFrame, ledger: Evaluation) -> None:
        s, dt_h, terms, batteries = problem.settings, problem.grid.step_h, ledger.terms, problem.batteries
        if not batteries:
            return
        # every battery's energy in one pass (a row each, equal to storage_soc_kwh of that battery)
        power = frame_rows(power_kw, [b.id for b in batteries])
        levels, _ = storage_soc_rows(
            np.array([b.initial_soc_kwh for b in batteries], dtype=float),
            power,
            dt_h,
            np.array([b.charge_efficiency for b in batteries], dtype=float),
            np.array([b.discharge_efficiency for b in batteries], dtype=float),
            np.zeros_like(power),
            np.zeros(len(batteries)),
        )
        discharged, charged = np.clip(power, 0, None).sum(axis=1), np.clip(-power, 0, None).sum(axis=1)
        for i, (b, soc) in enumerate(zip(batteries, levels, strict=True)):
            ledger.soc_kwh[b.id] = soc
            # degradation per kWh discharged, and the throughput tie-breaker
            terms["degradation_yen"] += b.degradation_yen_per_kwh * dt_h * float(discharged[i])
            terms["throughput_epsilon_yen"] += (
                s.throughput_epsilon_yen_per_kwh * dt_h * float(discharged[i] + charged[i])
            )
            if b.reserve_kwh > b.soc_min_kwh:
                short = float(np.clip(b.reserve_kwh - soc, 0, None).sum())
                ledger.report.bcp_shortfall_kwh_h += short * dt_h
                terms["bcp_shortfall_yen"] += s.bcp_shortfall_penalty_yen_per_kwh * dt_h * short
            terms["terminal_value_yen"] -= s.terminal_value_yen_per_kwh * (soc[-1] - b.initial_soc_kwh)

    def rule_start(self, state: RuleState) -> None:
        state.power |= {b.id: np.zeros(state.problem.grid.steps) for b in state.problem.batteries}
        state.carry["battery_soc_kwh"] = {b.id: b.initial_soc_kwh for b in state.problem.batteries}

    def rule_balance(self, state: RuleState, step: SiteStep) -> None:
        soc, dt_h, t = state.carry["battery_soc_kwh"], state.dt_h, step.t
        for b in state.problem.batteries:
            if b.site != step.site:
                continue
            if step.deficit_kw < 0:
                room = max(0.0, b.soc_max_kwh - soc[b.id]) / (b.charge_efficiency * dt_h)
                charge = min(b.charge_max_kw, -step.deficit_kw, room)
                soc[b.id] += b.charge_efficiency * charge * dt_h
                state.power[b.id][t] = -charge
                step.deficit_kw += charge
            else:
                floor = max(b.soc_min_kwh, b.reserve_kwh)
                available = max(0.0, soc[b.id] - floor) * b.discharge_efficiency / dt_h
                discharge = min(b.discharge_max_kw, step.deficit_kw, available)
                soc[b.id] -= discharge / b.discharge_efficiency * dt_h
                state.power[b.id][t] = discharge
                step.deficit_kw -= discharge

    def schedule_rows(self, problem: Problem, soc_kwh: pd.DataFrame) -> Iterable[ScheduleRows]:
        return [ScheduleRows(b.id, self.kind, b.site, soc_kwh[b.id].to_numpy()) for b in problem.batteries]

    def writable_devices(self, portfolio: Portfolio) -> set[str]:
        return {b.id for b in portfolio.batteries}

    def setpoints_kw(
        self, row: pd.Series | None, devices: set[str], plugged: Mapping[str, str | None]
    ) -> dict[str, float]:
        return {b: (float(row[b]) if row is not None and b in row else 0.0) for b in devices}

    def failsafe_kw(self, portfolio: Portfolio, device: str) -> float | None:
        """Its configured failsafe (default idle)."""
        return next((b.failsafe_kw for b in portfolio.batteries if b.id == device), None)
