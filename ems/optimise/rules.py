"""Rule-based schedule: the baseline a plan is compared to, and the fallback when a solve fails.

Rules, per site and step: PV runs at its forecast (curtailed only past the export limit); EVs
charge at full power from plug-in until full, never discharge; batteries self-consume (charge
from surplus, discharge to cover the deficit, never below their BCP reserve); the grid takes
the rest within its limits: past the import limit (0 in an outage) EV charging is cut first,
then load is left unserved (ordinary loads before shelter loads); past the export limit PV is
curtailed, curtailable arrays first, then the others (as their grid protection would).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ems.optimise.problem import Problem


def rule_based_power(problem: Problem) -> pd.DataFrame:
    steps, dt_h = problem.grid.steps, problem.grid.step_h
    power = {a.id: np.zeros(steps) for group in (problem.grids, problem.pvs, problem.batteries, problem.evs) for a in group}
    for load in problem.loads:
        power[load.id] = -load.demand_kw.astype(float)
    battery_soc = {b.id: b.initial_soc_kwh for b in problem.batteries}
    ev_soc = {ev.id: ev.initial_soc_kwh for ev in problem.evs}
    grid_of = {g.site: g for g in problem.grids}

    for t in range(steps):
        ev_charge = _ev_charging(problem, t, dt_h, ev_soc)
        for site in problem.sites:
            grid = grid_of[site]
            load_kw = sum(float(ld.demand_kw[t]) for ld in problem.loads if ld.site == site)
            pv_kw = sum(float(pv.available_kw[t]) for pv in problem.pvs if pv.site == site)
            site_evs = [ev for ev in problem.evs if ev.charger_site[t] == site]
            ev_kw = sum(ev_charge[ev.id] for ev in site_evs)
            deficit = load_kw + ev_kw - pv_kw
            deficit = _self_consume(problem, site, t, dt_h, deficit, battery_soc, power)
            import_limit = grid.import_limit_kw if grid.available else 0.0
            if deficit > import_limit and ev_kw > 0:
                cut = min(ev_kw, deficit - import_limit)
                for ev in site_evs:
                    ev_charge[ev.id] *= 1 - cut / ev_kw
                deficit -= cut
            if deficit > import_limit:
                deficit -= _shed_load(problem, site, t, deficit - import_limit, power)
            export_limit = grid.export_limit_kw if grid.available else 0.0
            curtail = max(0.0, -deficit - export_limit)
            _curtail_pv(problem, site, t, curtail, power)
            power[grid.id][t] = deficit + curtail
        for ev in problem.evs:
            power[ev.id][t] = -ev_charge[ev.id]
            ev_soc[ev.id] += ev.charge_efficiency * ev_charge[ev.id] * dt_h - float(ev.drive_kwh[t])
            ev_soc[ev.id] = max(ev_soc[ev.id], min(ev.soc_min_kwh, ev.initial_soc_kwh))
    return pd.DataFrame(power, index=problem.grid.index)


def _ev_charging(problem: Problem, t: int, dt_h: float, ev_soc: dict) -> dict[str, float]:
    charge = {}
    for ev in problem.evs:
        room_kwh = max(0.0, ev.soc_max_kwh - ev_soc[ev.id])
        charge[ev.id] = min(float(ev.charge_max_kw[t]), room_kwh / (ev.charge_efficiency * dt_h))
    return charge


def _self_consume(problem: Problem, site: str, t: int, dt_h: float, deficit: float, soc: dict, power: dict) -> float:
    for b in problem.batteries:
        if b.site != site:
            continue
        if deficit < 0:
            room = max(0.0, b.soc_max_kwh - soc[b.id]) / (b.charge_efficiency * dt_h)
            charge = min(b.charge_max_kw, -deficit, room)
            soc[b.id] += b.charge_efficiency * charge * dt_h
            power[b.id][t] = -charge
            deficit += charge
        else:
            floor = max(b.soc_min_kwh, b.reserve_kwh)
            available = max(0.0, soc[b.id] - floor) * b.discharge_efficiency / dt_h
            discharge = min(b.discharge_max_kw, deficit, available)
            soc[b.id] -= discharge / b.discharge_efficiency * dt_h
            power[b.id][t] = discharge
            deficit -= discharge
    return deficit


def _shed_load(problem: Problem, site: str, t: int, shed_kw: float, power: dict) -> float:
    """Leave up to ``shed_kw`` of the site's load unserved, ordinary loads first; returns the kW shed."""
    shed_total = 0.0
    for load in sorted((ld for ld in problem.loads if ld.site == site), key=lambda ld: ld.kind == "shelter_load"):
        cut = min(float(load.demand_kw[t]), shed_kw - shed_total)
        power[load.id][t] += cut
        shed_total += cut
    return shed_total


def _curtail_pv(problem: Problem, site: str, t: int, curtail_kw: float, power: dict) -> None:
    arrays = sorted((pv for pv in problem.pvs if pv.site == site), key=lambda pv: not pv.curtailable)
    for pv in arrays:
        available = float(pv.available_kw[t])
        cut = min(available, curtail_kw)
        power[pv.id][t] = available - cut
        curtail_kw -= cut
