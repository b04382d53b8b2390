"""Grid connection of a site: import and export within the contract, priced per step.

    0 <= import_kw[g,t] <= import_limit_kw          (0 during an outage)
    0 <= export_kw[g,t] <= export_limit_kw
    import_kw - export_kw enters the site bus        [kW]
    exclusive contracts:  import_kw <= import_limit * y[g,t]       (``grid_importing_first``),
                          export_kw <= export_limit * (1 - y[g,t]) (``grid_importing_second``)
      y exists only in steps where export_price >= effective import price: elsewhere netting
      is strictly cheaper, so the LP never imports and exports at once. There the cuts of
      ``add_grid_exchange_cuts`` tighten the choice (a FIT-like tariff).
    new_peak_kw[g] >= import_kw[g,t] - contract_demand_kw      (``grid_new_peak``)

Costs: energy (import price, export price), CO2 (factor x carbon price) on import, and the
demand charge on a new peak above the contract demand.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.optimise.build import ModelBuild, add_exclusive_flows
from ems.optimise.components.base import (
    Component,
    Evaluation,
    RuleState,
    ScheduleRows,
    SeriesCheck,
    frame_rows,
    var_array,
)
from ems.optimise.problem import Problem


def add_grid_constraints(build: ModelBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    grids = {g.id: g for g in problem.grids}
    index = [(g.id, t) for g in problem.grids for t in build.steps]
    m.grid_import_kw = pyo.Var(
        index, bounds=lambda _m, g, t: (0.0, grids[g].import_limit_kw if grids[g].available else 0.0)
    )
    m.grid_export_kw = pyo.Var(
        index, bounds=lambda _m, g, t: (0.0, grids[g].export_limit_kw if grids[g].available else 0.0)
    )

    exclusive_index = [
        (g.id, t)
        for g in problem.grids
        if g.exclusive_import_export and g.available and g.export_limit_kw > 0
        for t in build.steps
        if g.export_price_yen_per_kwh[t] >= g.effective_import_yen_per_kwh[t] - 1e-9
    ]
    add_exclusive_flows(
        m,
        "grid_importing",
        exclusive_index,
        m.grid_import_kw,
        lambda k: grids[k[0]].import_limit_kw,
        m.grid_export_kw,
        lambda k: grids[k[0]].export_limit_kw,
    )

    peaked = [
        g for g in problem.grids if g.contract_demand_kw is not None and g.demand_charge_yen_per_kw > 0 and g.available
    ]
    m.grid_new_peak_kw = pyo.Var([g.id for g in peaked], bounds=(0.0, None))
    m.grid_new_peak = pyo.Constraint(
        [(g.id, t) for g in peaked for t in build.steps],
        rule=lambda _m, g, t: _m.grid_new_peak_kw[g] >= _m.grid_import_kw[g, t] - grids[g].contract_demand_kw,
    )
    for g in peaked:
        build.cost("demand_charge_yen", g.demand_charge_yen_per_kw, m.grid_new_peak_kw[g.id])

    for g in problem.grids:
        for t in build.steps:
            imp, exp = m.grid_import_kw[g.id, t], m.grid_export_kw[g.id, t]
            build.into_bus(g.site, t, 1.0, imp)
            build.into_bus(g.site, t, -1.0, exp)
            build.cost("energy_cost_yen", float(g.import_price_yen_per_kwh[t]) * dt_h, imp)
            build.cost("energy_cost_yen", -float(g.export_price_yen_per_kwh[t]) * dt_h, exp)
            build.cost("carbon_cost_yen", float(g.co2_kg_per_kwh[t]) * g.carbon_price_yen_per_kg * dt_h, imp)


class GridComponent(Component):
    """The site's connection: the slack of the rule-based plan (it takes what the site still
    needs within its limits; ``rules.py`` settles it), so it has no rule hooks of its own."""

    kind = "grid"
    objective_terms = ("energy_cost_yen", "carbon_cost_yen", "demand_charge_yen")

    def specs(self, problem: Problem) -> tuple:
        return problem.grids

    def validate(self, problem: Problem, check_series: SeriesCheck) -> None:
        for g in problem.grids:
            check_series(g.id, "import_price_yen_per_kwh", g.import_price_yen_per_kwh)
            check_series(g.id, "export_price_yen_per_kwh", g.export_price_yen_per_kwh)
            check_series(g.id, "co2_kg_per_kwh", g.co2_kg_per_kwh, nonnegative=True)

    def build(self, build: ModelBuild) -> None:
        add_grid_constraints(build)

    def read_power(self, build: ModelBuild) -> dict[str, np.ndarray]:
        imports, exports = _exchange(build)
        return dict(zip((g.id for g in build.problem.grids), imports - exports, strict=True))

    def simultaneous_flows_kw(self, build: ModelBuild) -> dict[str, float]:
        imports, exports = _exchange(build)
        return {"simultaneous_import_export_kw": float(np.minimum(imports, exports).max()) if imports.size else 0.0}

    def binary_count(self, build: ModelBuild) -> int:
        return len(build.model.grid_importing_on)

    def evaluate(self, problem: Problem, power_kw: pd.DataFrame, ledger: Evaluation) -> None:
        terms, report, dt_h, grids = ledger.terms, ledger.report, problem.grid.step_h, problem.grids
        if not grids:
            return
        # every connection's sums at once (a row each, each row's sum as the row's own); added up grid by grid
        net = frame_rows(power_kw, [g.id for g in grids])
        imp, exp = np.clip(net, 0, None), np.clip(-net, 0, None)
        energy = np.sum(
            imp * np.array([g.import_price_yen_per_kwh for g in grids], dtype=float)
            - exp * np.array([g.export_price_yen_per_kwh for g in grids], dtype=float),
            axis=1,
        )
        co2_kg = np.sum(imp * np.array([g.co2_kg_per_kwh for g in grids], dtype=float), axis=1)
        imported, exported, peak = imp.sum(axis=1), exp.sum(axis=1), imp.max(axis=1, initial=0.0)
        for i, g in enumerate(grids):
            terms["energy_cost_yen"] += float(energy[i] * dt_h)
            co2 = float(co2_kg[i] * dt_h)
            report.co2_kg += co2
            terms["carbon_cost_yen"] += co2 * g.carbon_price_yen_per_kg
            report.grid_import_kwh += float(imported[i] * dt_h)
            report.grid_export_kwh += float(exported[i] * dt_h)
            report.peak_import_kw = max(report.peak_import_kw, float(peak[i]))
            if g.contract_demand_kw is not None and g.demand_charge_yen_per_kw > 0 and g.available:
                terms["demand_charge_yen"] += g.demand_charge_yen_per_kw * max(
                    0.0, float(peak[i]) - g.contract_demand_kw
                )

    def rule_start(self, state: RuleState) -> None:
        state.power |= {g.id: np.zeros(state.problem.grid.steps) for g in state.problem.grids}

    def schedule_rows(self, problem: Problem, soc_kwh: pd.DataFrame) -> Iterable[ScheduleRows]:
        return [ScheduleRows(g.id, self.kind, g.site) for g in problem.grids]


def _exchange(build: ModelBuild) -> tuple[np.ndarray, np.ndarray]:
    """Import and export [kW], one row per grid connection (the variables are grid-major)."""
    shape = (len(build.problem.grids), build.problem.grid.steps)
    return var_array(build.model.grid_import_kw, shape), var_array(build.model.grid_export_kw, shape)


def add_grid_exchange_cuts(build: ModelBuild) -> None:
    """Where a grid has the import/export binary: it exports at most what the site generates and
    imports at most what the site draws, in that step (``grid_export_cut``, ``grid_import_cut``):

        export_kw[g,t] <= sum of the site's flows into the bus other than the grid + max(bus constant, 0)
        import_kw[g,t] <= sum of the site's flows out of the bus other than the grid + max(-bus constant, 0)

    (into the bus: PV, discharging, shedding; out of it: charging, any kind's draw; the constant is
    PV that cannot be curtailed less the load). With the other direction at zero, the bus
    balance gives each at once, whatever kinds of asset the site has.
    Both hold in every plan without simultaneous import and export, so they cut off nothing
    allowed; they cut off the relaxation's "sell the PV, buy the load" at a FIT-like price.
    Called once every component has booked its flows into the bus.
    """
    m, problem = build.model, build.problem
    keys = list(m.grid_importing_on.keys()) if hasattr(m, "grid_importing_on") else []
    site_of = {g.id: g.site for g in problem.grids}
    grid_vars = {id(m.grid_import_kw[k]) for k in keys} | {id(m.grid_export_kw[k]) for k in keys}

    def flows(g, t, sign):
        return [(c, v) for c, v in build.bus.get((site_of[g], t), []) if c * sign > 0 and id(v) not in grid_vars]

    def export_rule(_m, g, t):
        constant = build.bus_constant_kw.get((site_of[g], t), 0.0)
        return m.grid_export_kw[g, t] <= pyo.quicksum(c * v for c, v in flows(g, t, 1)) + max(constant, 0.0)

    def import_rule(_m, g, t):
        constant = build.bus_constant_kw.get((site_of[g], t), 0.0)
        return m.grid_import_kw[g, t] <= pyo.quicksum(-c * v for c, v in flows(g, t, -1)) + max(-constant, 0.0)

    m.grid_export_cut = pyo.Constraint(keys, rule=export_rule)
    m.grid_import_cut = pyo.Constraint(keys, rule=import_rule)
