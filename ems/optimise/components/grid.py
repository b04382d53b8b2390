"""Grid connection of a site: import and export within the contract, priced per step.

    0 <= import_kw[g,t] <= import_limit_kw          (0 during an outage)
    0 <= export_kw[g,t] <= export_limit_kw
    import_kw - export_kw enters the site bus        [kW]
    exclusive contracts:  import_kw <= most_import_kw[g,t] * y[g,t]       (``grid_importing_first``),
                          export_kw <= most_export_kw[g,t] * (1 - y[g,t]) (``grid_importing_second``)
      y exists only in steps where export_price >= effective import price: elsewhere netting
      is strictly cheaper, so the LP never imports and exports at once.
      most_import_kw = min(import_limit, what the site can draw: demand + storage and EV charging),
      most_export_kw = min(export_limit, what the site can give: PV + storage and V2G discharging),
      the tightest limits that stay valid (``exclusive_limits_kw``): with a FIT-like tariff the
      relaxation otherwise trades up to the contract limits both ways and the search crawls.
    new_peak_kw[g] >= import_kw[g,t] - contract_demand_kw      (``grid_new_peak``)

Costs: energy (import price, export price), CO2 (factor x carbon price) on import, and the
demand charge on a new peak above the contract demand.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from ems.optimise.build import ModelBuild, add_exclusive_flows
from ems.optimise.problem import GridSpec, Problem


def exclusive_limits_kw(problem: Problem, g: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    """(most import, most export) [kW] per step of grid ``g`` when it only imports or only exports:
    importing alone, the site draws at most its demand and every storage and EV charging at full
    power; exporting alone, it gives at most its PV and every storage and V2G discharging at full
    power (shedding load only lowers the demand)."""
    steps = problem.grid.steps
    draw, give = np.zeros(steps), np.zeros(steps)
    for load in problem.loads:
        if load.site == g.site:
            draw += load.demand_kw
    for pv in problem.pvs:
        if pv.site == g.site:
            give += pv.available_kw
    for b in problem.batteries:
        if b.site == g.site:
            draw += b.charge_max_kw
            give += b.discharge_max_kw
    for ev in problem.evs:
        here = np.array([site == g.site for site in ev.charger_site])
        draw += np.where(here, ev.charge_max_kw, 0.0)
        give += np.where(here, ev.discharge_max_kw, 0.0)
    return np.minimum(draw, g.import_limit_kw), np.minimum(give, g.export_limit_kw)


def add_grid_constraints(build: ModelBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    grids = {g.id: g for g in problem.grids}
    index = [(g.id, t) for g in problem.grids for t in build.steps]
    m.grid_import_kw = pyo.Var(index, bounds=lambda _m, g, t: (0.0, grids[g].import_limit_kw if grids[g].available else 0.0))
    m.grid_export_kw = pyo.Var(index, bounds=lambda _m, g, t: (0.0, grids[g].export_limit_kw if grids[g].available else 0.0))

    exclusive_index = [
        (g.id, t)
        for g in problem.grids
        if g.exclusive_import_export and g.available and g.export_limit_kw > 0
        for t in build.steps
        if g.export_price_yen_per_kwh[t] >= g.effective_import_yen_per_kwh[t] - 1e-9
    ]
    limits = {g.id: exclusive_limits_kw(problem, g) for g in problem.grids if any(k[0] == g.id for k in exclusive_index)}
    add_exclusive_flows(m, "grid_importing", exclusive_index, m.grid_import_kw, lambda k: float(limits[k[0]][0][k[1]]),
                        m.grid_export_kw, lambda k: float(limits[k[0]][1][k[1]]))

    peaked = [g for g in problem.grids if g.contract_demand_kw is not None and g.demand_charge_yen_per_kw > 0 and g.available]
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


def add_grid_exchange_cuts(build: ModelBuild) -> None:
    """Where a grid has the import/export binary: it exports at most what the site generates and
    imports at most what the site draws, in that step (``grid_export_cut``, ``grid_import_cut``):

        export_kw[g,t] <= sum of the site's flows into the bus other than the grid (PV, discharging, shedding)
        import_kw[g,t] <= sum of the site's flows out of the bus other than the grid (load, charging)

    Both hold in every plan without simultaneous import and export, so they cut off nothing
    allowed; they cut off the relaxation's "sell the PV, buy the load" at a FIT-like price.
    Called once every component has booked its flows into the bus.
    """
    m, problem = build.model, build.problem
    keys = list(m.grid_importing_on.keys()) if hasattr(m, "grid_importing_on") else []
    site_of = {g.id: g.site for g in problem.grids}
    firm = {(pv.site, t): 0.0 for pv in problem.pvs for t in build.steps}
    for pv in problem.pvs:
        if not pv.curtailable:
            for t in build.steps:
                firm[(pv.site, t)] += float(pv.available_kw[t])
    grid_vars = {id(m.grid_import_kw[k]) for k in keys} | {id(m.grid_export_kw[k]) for k in keys}

    def flows(g, t, sign):
        return [(c, v) for c, v in build.bus.get((site_of[g], t), []) if c * sign > 0 and id(v) not in grid_vars]

    def export_rule(_m, g, t):
        return m.grid_export_kw[g, t] <= pyo.quicksum(c * v for c, v in flows(g, t, 1)) + firm.get((site_of[g], t), 0.0)

    def import_rule(_m, g, t):
        demand = sum(float(ld.demand_kw[t]) for ld in problem.loads if ld.site == site_of[g])
        return m.grid_import_kw[g, t] <= pyo.quicksum(-c * v for c, v in flows(g, t, -1)) + demand

    m.grid_export_cut = pyo.Constraint(keys, rule=export_rule)
    m.grid_import_cut = pyo.Constraint(keys, rule=import_rule)
