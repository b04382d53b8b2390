"""Grid connection of a site: import and export within the contract, priced per step.

    0 <= import_kw[g,t] <= import_limit_kw          (0 during an outage)
    0 <= export_kw[g,t] <= export_limit_kw
    import_kw - export_kw enters the site bus        [kW]
    exclusive contracts:  import_kw <= import_limit * y[g,t]       (``grid_importing_first``),
                          export_kw <= export_limit * (1 - y[g,t]) (``grid_importing_second``)
      y exists only in steps where export_price >= effective import price: elsewhere netting
      is strictly cheaper, so the LP never imports and exports at once.
    new_peak_kw[g] >= import_kw[g,t] - contract_demand_kw      (``grid_new_peak``)

Costs: energy (import price, export price), CO2 (factor x carbon price) on import, and the
demand charge on a new peak above the contract demand.
"""

from __future__ import annotations

import pyomo.environ as pyo

from ems.optimise.build import ModelBuild, add_exclusive_flows


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
    add_exclusive_flows(m, "grid_importing", exclusive_index, m.grid_import_kw, lambda k: grids[k[0]].import_limit_kw,
                        m.grid_export_kw, lambda k: grids[k[0]].export_limit_kw)

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
