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

import pyomo.environ as pyo

from ems.optimise.build import ModelBuild, add_exclusive_flows


def add_ev_constraints(build: ModelBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    evs = {ev.id: ev for ev in problem.evs}
    steps = list(build.steps)
    horizon = len(steps)
    charge_index = discharge_index = drive_index = [(v, t) for v in evs for t in steps]
    soc_index = [(v, t) for v in evs for t in range(horizon + 1)]

    def soc_bounds(_m, v, t):
        ev = evs[v]
        return (min(ev.soc_min_kwh, ev.initial_soc_kwh), max(ev.soc_max_kwh, ev.initial_soc_kwh))

    m.ev_charge_kw = pyo.Var(charge_index, bounds=lambda _m, v, t: (0.0, float(evs[v].charge_max_kw[t])))
    m.ev_discharge_kw = pyo.Var(discharge_index, bounds=lambda _m, v, t: (0.0, float(evs[v].discharge_max_kw[t])))
    m.ev_drive_shortfall_kwh = pyo.Var(drive_index, bounds=lambda _m, v, t: (0.0, float(evs[v].drive_kwh[t])))
    m.ev_soc_kwh = pyo.Var(soc_index, bounds=soc_bounds)
    for v, ev in evs.items():
        m.ev_soc_kwh[v, 0].fix(ev.initial_soc_kwh)

    def soc_balance(_m, v, t):
        ev = evs[v]
        return _m.ev_soc_kwh[v, t + 1] == (
            _m.ev_soc_kwh[v, t] + ev.charge_efficiency * dt_h * _m.ev_charge_kw[v, t]
            - dt_h / ev.discharge_efficiency * _m.ev_discharge_kw[v, t]
            - float(ev.drive_kwh[t]) + _m.ev_drive_shortfall_kwh[v, t])

    m.ev_soc_balance = pyo.Constraint([(v, t) for v in evs for t in steps], rule=soc_balance)

    binary_index = [(v, t) for v, t in discharge_index if evs[v].discharge_max_kw[t] > 0 and build.storage_binary_steps[t]]
    add_exclusive_flows(m, "ev_charging", binary_index, m.ev_charge_kw, lambda k: float(evs[k[0]].charge_max_kw[k[1]]),
                        m.ev_discharge_kw, lambda k: float(evs[k[0]].discharge_max_kw[k[1]]))

    target_index = [(v, k) for v, ev in evs.items() for k, _e in ev.departure_targets]
    targets = {(v, k): energy for v, ev in evs.items() for k, energy in ev.departure_targets}
    m.ev_target_shortfall_kwh = pyo.Var(target_index, bounds=(0.0, None))
    m.ev_departure_target = pyo.Constraint(
        target_index, rule=lambda _m, v, k: _m.ev_soc_kwh[v, k] + _m.ev_target_shortfall_kwh[v, k] >= targets[v, k]
    )

    keep_index = [(v, t) for v, ev in evs.items() if ev.keep_energy_kwh > ev.soc_min_kwh for t in range(1, horizon + 1)]
    m.ev_keep_shortfall_kwh = pyo.Var(keep_index, bounds=(0.0, None))
    m.ev_keep_energy = pyo.Constraint(
        keep_index, rule=lambda _m, v, t: _m.ev_soc_kwh[v, t] + _m.ev_keep_shortfall_kwh[v, t] >= evs[v].keep_energy_kwh
    )

    _book_ev_costs_and_bus(build, evs, charge_index, discharge_index, drive_index, target_index, keep_index)


def home_site(ev) -> str | None:
    """The site the vehicle charges at most often in the horizon (None if it never plugs in).
    While away, its charge and discharge (bounded by 0) sit on that site's bus, so a re-plan
    whose windows moved finds them already there."""
    sites = [site for site in ev.charger_site if site is not None]
    return max(sorted(set(sites)), key=sites.count) if sites else None


def _book_ev_costs_and_bus(build, evs, charge_index, discharge_index, drive_index, target_index, keep_index) -> None:
    m, settings, dt_h = build.model, build.problem.settings, build.step_h
    epsilon = settings.throughput_epsilon_yen_per_kwh * dt_h
    home = {v: home_site(ev) for v, ev in evs.items()}
    for v, t in charge_index:
        site = evs[v].charger_site[t] or home[v]
        if site is not None:
            build.into_bus(site, t, -1.0, m.ev_charge_kw[v, t])
        build.cost("throughput_epsilon_yen", epsilon, m.ev_charge_kw[v, t])
    for v, t in discharge_index:
        site = evs[v].charger_site[t] or home[v]
        if site is not None:
            build.into_bus(site, t, 1.0, m.ev_discharge_kw[v, t])
        build.cost("throughput_epsilon_yen", epsilon, m.ev_discharge_kw[v, t])
    for key in drive_index:
        build.cost("drive_shortfall_yen", settings.drive_shortfall_penalty_yen_per_kwh, m.ev_drive_shortfall_kwh[key])
    for key in target_index:
        build.cost("ev_shortfall_yen", settings.ev_shortfall_penalty_yen_per_kwh, m.ev_target_shortfall_kwh[key])
    for key in keep_index:
        build.cost("bcp_shortfall_yen", settings.bcp_shortfall_penalty_yen_per_kwh * dt_h, m.ev_keep_shortfall_kwh[key])
    horizon = build.problem.grid.steps
    for v, ev in evs.items():
        build.cost("terminal_value_yen", -settings.terminal_value_yen_per_kwh, m.ev_soc_kwh[v, horizon])
        build.objective_constant["terminal_value_yen"] += settings.terminal_value_yen_per_kwh * ev.initial_soc_kwh
