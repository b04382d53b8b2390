"""The day played out: a rolling plan on forecasts against the actual day, next to the plan
made with the actual day known in advance (perfect foresight) and the rule-based baseline.

Every ``replan_steps`` steps the rolling controller plans the next 24 h on the forecast (P50)
from the state reached so far, then applies the first ``replan_steps`` steps of that plan to the
actual day: batteries and EVs follow their set-points; PV gives what the sun actually gives
(kept at the planned level where the plan curtailed); the load is the actual load; the grid
is held at its planned power by the site's batteries where they can (the live loop's
set-point tracking: a battery covers the forecast error within its power and energy limits),
and takes the rest, PV being curtailed further if export would exceed the limit. The realised
powers are then priced with the actual day's problem, like the other two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from ems.optimise import fallback_schedule, solve
from ems.optimise.evaluate import evaluate, storage_soc_kwh
from ems.optimise.problem import Problem
from ems.optimise.replanner import Replanner
from simulations.day import day_problem


class _SiteAsset(Protocol):
    """A PV, load or battery of the problem: what the site balance needs of it."""

    @property
    def id(self) -> str: ...

    @property
    def site(self) -> str: ...


@dataclass(frozen=True)
class DayOutcome:
    rolling_objective_yen: float
    rolling_cost_yen: float
    perfect_objective_yen: float
    perfect_cost_yen: float
    rule_objective_yen: float
    rule_cost_yen: float
    replans: int
    rolling_demand_charge_yen: float = 0.0
    perfect_demand_charge_yen: float = 0.0
    rule_demand_charge_yen: float = 0.0

    @property
    def captured_savings(self) -> float:
        """Share of the perfect-foresight saving over the rule-based baseline the rolling plan got."""
        possible = self.rule_objective_yen - self.perfect_objective_yen
        return (self.rule_objective_yen - self.rolling_objective_yen) / possible if possible > 1e-9 else 1.0

    @property
    def captured_savings_without_demand_charge(self) -> float:
        """The same share with every demand charge left out (the rule-based baseline's new
        peaks otherwise dominate the saving)."""
        rule = self.rule_objective_yen - self.rule_demand_charge_yen
        possible = rule - (self.perfect_objective_yen - self.perfect_demand_charge_yen)
        rolling = self.rolling_objective_yen - self.rolling_demand_charge_yen
        return (rule - rolling) / possible if possible > 1e-9 else 1.0


def _state_kwh(actual: Problem, realised: pd.DataFrame, upto: int) -> dict[str, float]:
    """Energy in every battery and EV at the start of step ``upto``."""
    dt_h, state = actual.grid.step_h, {}
    for b in actual.batteries:
        soc, _ = storage_soc_kwh(
            b.initial_soc_kwh, realised[b.id].to_numpy()[:upto], dt_h, b.charge_efficiency, b.discharge_efficiency
        )
        state[b.id] = float(soc[-1]) if upto else b.initial_soc_kwh
    for ev in actual.evs:
        floor = min(ev.soc_min_kwh, ev.initial_soc_kwh)
        soc, _ = storage_soc_kwh(
            ev.initial_soc_kwh,
            realised[ev.id].to_numpy()[:upto],
            dt_h,
            ev.charge_efficiency,
            ev.discharge_efficiency,
            ev.drive_kwh[:upto],
            floor,
        )
        state[ev.id] = float(soc[-1]) if upto else ev.initial_soc_kwh
    return state


def _apply(
    actual: Problem,
    plan_power: pd.DataFrame,
    forecast: Problem,
    t_actual: int,
    t_plan: int,
    realised: pd.DataFrame,
    soc_kwh: dict[str, float],
) -> None:
    """Write step ``t_actual`` of the realised day from step ``t_plan`` of the plan."""
    forecast_pv = {p.id: p.available_kw for p in forecast.pvs}
    row = realised.index[t_actual]
    for asset_id in [b.id for b in actual.batteries] + [e.id for e in actual.evs]:
        realised.at[row, asset_id] = plan_power[asset_id].iat[t_plan]
    for load in actual.loads:
        realised.at[row, load.id] = -load.demand_kw[t_actual]
    for pv in actual.pvs:
        planned = plan_power[pv.id].iat[t_plan]
        curtailed = planned < forecast_pv[pv.id][t_plan] - 1e-6
        available = pv.available_kw[t_actual]
        realised.at[row, pv.id] = min(planned, available) if curtailed else available
    for g in actual.grids:
        _balance_site(actual, g, t_actual, float(plan_power[g.id].iat[t_plan]), realised, soc_kwh)


def _balance_site(actual: Problem, g, t: int, planned_grid_kw: float, realised: pd.DataFrame, soc_kwh: dict) -> None:
    row, dt_h = realised.index[t], actual.grid.step_h
    sited: tuple[_SiteAsset, ...] = (*actual.pvs, *actual.loads, *actual.batteries)
    site_assets = [a.id for a in sited if a.site == g.site]
    site_assets += [e.id for e in actual.evs if e.charger_site[t] == g.site]
    grid_kw = -float(realised.loc[row, site_assets].sum())
    for b in (b for b in actual.batteries if b.site == g.site):
        most_out = min(b.discharge_max_kw, max(0.0, soc_kwh[b.id] - b.soc_min_kwh) * b.discharge_efficiency / dt_h)
        most_in = min(b.charge_max_kw, max(0.0, b.soc_max_kwh - soc_kwh[b.id]) / (b.charge_efficiency * dt_h))
        planned = float(realised.at[row, b.id])
        current = min(max(planned, -most_in), most_out)  # the plan's set-point, within what the battery holds
        grid_kw -= current - planned
        # tracking never draws on the BCP reserve; only the plan itself may (and pays for it)
        above_reserve = max(0.0, soc_kwh[b.id] - max(b.soc_min_kwh, b.reserve_kwh)) * b.discharge_efficiency / dt_h
        most_out = min(most_out, max(current, above_reserve))
        new = min(max(current + (grid_kw - planned_grid_kw), -most_in), most_out)
        realised.at[row, b.id] = new
        grid_kw -= new - current
    excess_export = -grid_kw - g.export_limit_kw
    for pv in (p for p in actual.pvs if p.site == g.site):
        if excess_export <= 0:
            break
        cut = min(excess_export, float(realised.at[row, pv.id]))
        realised.at[row, pv.id] -= cut
        grid_kw += cut
        excess_export -= cut
    realised.at[row, g.id] = grid_kw


def rolling_day(
    portfolio, profiles, actual: Problem, forecast_kw_for, replan_steps: int = 2
) -> tuple[DayOutcome, pd.DataFrame]:
    """Play the actual day (``actual``: its problem with the actual PV and load) with a plan
    re-made every ``replan_steps`` steps; ``forecast_kw_for(start)`` gives the forecast series
    for a 24 h plan from ``start``."""
    steps = actual.grid.steps
    columns = [a.id for group in (actual.grids, actual.pvs, actual.loads, actual.batteries, actual.evs) for a in group]
    realised = pd.DataFrame(0.0, index=actual.grid.index, columns=columns)
    replans, replanner = 0, Replanner()  # the same model, updated, while the structure holds
    for t0 in range(0, steps, replan_steps):
        start = actual.grid.index[t0]
        forecast = day_problem(
            portfolio, profiles, start, forecast_kw_for(start), initial_soc_kwh=_state_kwh(actual, realised, t0)
        )
        plan = replanner.solve(forecast)
        replans += 1
        for k in range(min(replan_steps, steps - t0)):
            soc_kwh = _state_kwh(actual, realised, t0 + k)
            _apply(actual, plan.power_kw, forecast, t0 + k, k, realised, soc_kwh)
    rolling_terms, _report, _soc = evaluate(actual, realised)
    perfect = solve(actual)
    rule = fallback_schedule(actual, "rule-based baseline")
    energy = ("energy_cost_yen", "demand_charge_yen")
    outcome = DayOutcome(
        rolling_objective_yen=float(sum(rolling_terms.values())),
        rolling_cost_yen=float(sum(rolling_terms[k] for k in energy)),
        perfect_objective_yen=perfect.objective_yen,
        perfect_cost_yen=perfect.cost_yen,
        rule_objective_yen=rule.objective_yen,
        rule_cost_yen=rule.cost_yen,
        replans=replans,
        rolling_demand_charge_yen=rolling_terms["demand_charge_yen"],
        perfect_demand_charge_yen=perfect.objective_terms["demand_charge_yen"],
        rule_demand_charge_yen=rule.objective_terms["demand_charge_yen"],
    )
    return outcome, realised


def day_outcome_dict(outcome: DayOutcome) -> dict[str, float]:
    return {
        "rolling_objective_yen": round(outcome.rolling_objective_yen, 2),
        "rolling_cost_yen": round(outcome.rolling_cost_yen, 2),
        "perfect_objective_yen": round(outcome.perfect_objective_yen, 2),
        "perfect_cost_yen": round(outcome.perfect_cost_yen, 2),
        "rule_objective_yen": round(outcome.rule_objective_yen, 2),
        "rule_cost_yen": round(outcome.rule_cost_yen, 2),
        "captured_savings": round(outcome.captured_savings, 4),
        "captured_savings_without_demand_charge": round(outcome.captured_savings_without_demand_charge, 4),
        "rolling_demand_charge_yen": round(outcome.rolling_demand_charge_yen, 2),
        "perfect_demand_charge_yen": round(outcome.perfect_demand_charge_yen, 2),
        "rule_demand_charge_yen": round(outcome.rule_demand_charge_yen, 2),
        "replans": outcome.replans,
    }
