"""Recompute a schedule's objective terms from its powers alone, in numpy.

This is the independent physics and cost check: the solver's objective must equal what this
module computes from the solved powers, and the rule-based baseline is priced by the same code,
so plan and baseline are compared on one basis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ems.optimise.problem import EvSpec, Problem


def storage_soc_kwh(initial_kwh: float, power_kw: np.ndarray, dt_h: float, eta_charge: float, eta_discharge: float,
                    drive_kwh: np.ndarray | None = None, floor_kwh: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Energy at the end of each step from net power (positive = discharge), and the driving
    energy the battery could not supply (kept at ``floor_kwh``)."""
    charge = np.clip(-power_kw, 0, None)
    discharge = np.clip(power_kw, 0, None)
    delta = eta_charge * charge * dt_h - discharge / eta_discharge * dt_h
    drive = np.zeros_like(power_kw) if drive_kwh is None else drive_kwh
    soc = np.empty(len(power_kw))
    short = np.zeros(len(power_kw))
    level = initial_kwh
    for t in range(len(power_kw)):
        level = level + delta[t] - drive[t]
        if drive[t] > 0 and level < floor_kwh - 1e-9:
            short[t] = min(drive[t], floor_kwh - level)
            level += short[t]
        soc[t] = level
    return soc, short


def _ev_floor(ev: EvSpec) -> float:
    return min(ev.soc_min_kwh, ev.initial_soc_kwh)


def evaluate(problem: Problem, power_kw: pd.DataFrame) -> tuple[dict[str, float], dict[str, float], pd.DataFrame]:
    """(objective terms [yen], reported quantities, recomputed SoC at the end of each step)."""
    s, dt_h = problem.settings, problem.grid.step_h
    terms = {name: 0.0 for name in (
        "energy_cost_yen", "carbon_cost_yen", "demand_charge_yen", "degradation_yen", "throughput_epsilon_yen",
        "ev_shortfall_yen", "drive_shortfall_yen", "bcp_shortfall_yen", "dr_revenue_yen", "dr_penalty_yen",
        "terminal_value_yen", "unserved_load_yen")}
    report = {"co2_kg": 0.0, "grid_import_kwh": 0.0, "grid_export_kwh": 0.0, "pv_kwh": 0.0, "pv_curtailed_kwh": 0.0,
              "ev_target_shortfall_kwh": 0.0, "drive_shortfall_kwh": 0.0, "bcp_shortfall_kwh_h": 0.0,
              "dr_shortfall_kwh": 0.0, "peak_import_kw": 0.0, "load_shed_total_kwh": 0.0}
    soc_frame = {}
    for g in problem.grids:
        net = power_kw[g.id].to_numpy()
        imp, exp = np.clip(net, 0, None), np.clip(-net, 0, None)
        terms["energy_cost_yen"] += float(np.sum(imp * g.import_price_yen_per_kwh - exp * g.export_price_yen_per_kwh) * dt_h)
        co2 = float(np.sum(imp * g.co2_kg_per_kwh) * dt_h)
        report["co2_kg"] += co2
        terms["carbon_cost_yen"] += co2 * g.carbon_price_yen_per_kg
        report["grid_import_kwh"] += float(imp.sum() * dt_h)
        report["grid_export_kwh"] += float(exp.sum() * dt_h)
        report["peak_import_kw"] = max(report["peak_import_kw"], float(imp.max(initial=0.0)))
        if g.contract_demand_kw is not None and g.demand_charge_yen_per_kw > 0 and g.available:
            terms["demand_charge_yen"] += g.demand_charge_yen_per_kw * max(0.0, float(imp.max(initial=0.0)) - g.contract_demand_kw)
    for pv in problem.pvs:
        out = power_kw[pv.id].to_numpy()
        report["pv_kwh"] += float(out.sum() * dt_h)
        report["pv_curtailed_kwh"] += float((pv.available_kw - out).sum() * dt_h)
    for b in problem.batteries:
        p = power_kw[b.id].to_numpy()
        soc, _ = storage_soc_kwh(b.initial_soc_kwh, p, dt_h, b.charge_efficiency, b.discharge_efficiency)
        soc_frame[b.id] = soc
        _storage_terms(terms, s, dt_h, p, b.degradation_yen_per_kwh)
        if b.reserve_kwh > b.soc_min_kwh:
            short = float(np.clip(b.reserve_kwh - soc, 0, None).sum())
            report["bcp_shortfall_kwh_h"] += short * dt_h
            terms["bcp_shortfall_yen"] += s.bcp_shortfall_penalty_yen_per_kwh * dt_h * short
        terms["terminal_value_yen"] -= s.terminal_value_yen_per_kwh * (soc[-1] - b.initial_soc_kwh)
    for ev in problem.evs:
        p = power_kw[ev.id].to_numpy()
        soc, drive_short = storage_soc_kwh(ev.initial_soc_kwh, p, dt_h, ev.charge_efficiency, ev.discharge_efficiency,
                                           ev.drive_kwh, _ev_floor(ev))
        soc_frame[ev.id] = soc
        _storage_terms(terms, s, dt_h, p, 0.0)
        report["drive_shortfall_kwh"] += float(drive_short.sum())
        terms["drive_shortfall_yen"] += s.drive_shortfall_penalty_yen_per_kwh * float(drive_short.sum())
        soc_start = np.concatenate([[ev.initial_soc_kwh], soc])  # energy at the start of step k
        target_short = sum(max(0.0, energy - soc_start[k]) for k, energy in ev.departure_targets)
        report["ev_target_shortfall_kwh"] += target_short
        terms["ev_shortfall_yen"] += s.ev_shortfall_penalty_yen_per_kwh * target_short
        if ev.keep_energy_kwh > ev.soc_min_kwh:
            short = float(np.clip(ev.keep_energy_kwh - soc, 0, None).sum())
            report["bcp_shortfall_kwh_h"] += short * dt_h
            terms["bcp_shortfall_yen"] += s.bcp_shortfall_penalty_yen_per_kwh * dt_h * short
        terms["terminal_value_yen"] -= s.terminal_value_yen_per_kwh * (soc[-1] - ev.initial_soc_kwh)
    shed_kwh = float(sum(shed.sum() for shed in load_shed_kw(problem, power_kw).values()) * dt_h)
    report["load_shed_total_kwh"] = shed_kwh
    terms["unserved_load_yen"] = s.unserved_load_yen_per_kwh * shed_kwh
    _dr_terms(problem, power_kw, terms, report)
    return terms, report, pd.DataFrame(soc_frame, index=power_kw.index)


def load_shed_kw(problem: Problem, power_kw: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per site, the load left unserved in each step [kW]: demand minus the load's power drawn."""
    shed = {site: np.zeros(problem.grid.steps) for site in problem.sites}
    for load in problem.loads:
        shed[load.site] += np.clip(load.demand_kw + power_kw[load.id].to_numpy(), 0, None)
    return shed


def _storage_terms(terms: dict, s, dt_h: float, p: np.ndarray, degradation: float) -> None:
    discharge, charge = np.clip(p, 0, None), np.clip(-p, 0, None)
    terms["degradation_yen"] += degradation * dt_h * float(discharge.sum())
    terms["throughput_epsilon_yen"] += s.throughput_epsilon_yen_per_kwh * dt_h * float(discharge.sum() + charge.sum())


def _dr_terms(problem: Problem, power_kw: pd.DataFrame, terms: dict, report: dict) -> None:
    dt_h = problem.grid.step_h
    for event in problem.dr_events:
        net = sum(power_kw[g.id].to_numpy() for g in problem.grids if g.site in event.sites)
        if event.direction == "down":
            short = net - (event.baseline_kw - event.requested_kw)
        else:
            short = (event.baseline_kw + event.requested_kw) - net
        short = np.clip(short, 0, event.requested_kw) * event.active
        delivered_kwh = float(((event.requested_kw - short) * event.active).sum() * dt_h)
        terms["dr_revenue_yen"] -= event.price_yen_per_kwh * delivered_kwh
        terms["dr_penalty_yen"] += event.penalty_yen_per_kwh * float(short.sum() * dt_h)
        report["dr_shortfall_kwh"] += float(short.sum() * dt_h)
