"""The 30-minute balance played out: a day planned on the P50 forecast, lived minute by minute
with a seeded forecast-error sample, with and without following the demand plan.

The plan (24 h, the portfolio's step) fixes each slot's planned net import per site. Each
minute the actual PV and load are the sample's slot values with a seeded minute-scale wobble
(AR(1), 5 % of the value); batteries and plugged EVs take the plan's set-points, or, when
following, the set-points :class:`ems.control.following.PlanFollower` gives (the same code
``ems run`` calls each poll, here polled every minute). Batteries hold their power and SoC
limits; PV is curtailed only where the plan curtailed it. A slot's metered energy is the
integral of the site's grid power over its 30 minutes; imbalance = metered - planned.
"""

from __future__ import annotations

import datetime as dt
import zlib

import numpy as np
import pandas as pd

from ems.control.following import PlanFollower, Steerable
from ems.optimise import solve
from ems.optimise.problem import Problem
from ems.optimise.schedule import Schedule
from simulations.day import day_grid, day_problem, load_inputs, quantiles_for
from simulations.forecast_errors import p50_series, sample_series

MINUTES_PER_DAY = 24 * 60
REPLAN_MINUTES = 60  # the live loop re-plans every few minutes; hourly keeps a simulated week quick
WOBBLE_FRACTION = 0.05


def _wobble(seed: int, asset: str, minutes: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(asset.encode()), 7])
    z = np.zeros(minutes)
    for t in range(1, minutes):
        z[t] = 0.9 * z[t - 1] + np.sqrt(1 - 0.81) * rng.standard_normal()
    return 1 + WOBBLE_FRACTION * z


def _per_minute(values: np.ndarray, step_minutes: int) -> np.ndarray:
    return np.repeat(np.asarray(values, float), step_minutes)


def imbalance_day(
    config_path: str,
    date: dt.date,
    seed: int,
    follow: bool,
    source: str = "profiles",
    imbalance_price_yen_per_kwh: float = 30.0,
    replan_minutes: int = REPLAN_MINUTES,
) -> dict:
    """Play ``date`` with forecast-error sample ``seed``; returns per-slot and daily figures."""
    portfolio, profiles = load_inputs(str(config_path))
    grid = day_grid(portfolio, date)
    quantiles = quantiles_for(source, str(config_path), grid)
    actual = sample_series(quantiles, seed, grid.step_minutes)
    follower = PlanFollower(portfolio, imbalance_price_yen_per_kwh, enabled=follow)
    day = _Day(portfolio, profiles, str(config_path), source, grid, actual, seed)
    true_kwh = day.play(follower, replan_minutes)
    rows = [
        {
            "slot_start": pd.Timestamp(slot).tz_convert(grid.start.tz).isoformat(),
            "site": site,
            "planned_kwh": follower.planned_kwh[slot][site],
            "metered_kwh": kwh,
        }
        for slot, sites in sorted(true_kwh.items())
        for site, kwh in sites.items()
    ]
    frame = pd.DataFrame(rows)
    frame["imbalance_kwh"] = frame["metered_kwh"] - frame["planned_kwh"]
    total = frame.groupby("slot_start")[["planned_kwh", "metered_kwh", "imbalance_kwh"]].sum()
    absolute = float(total["imbalance_kwh"].abs().sum())
    return {
        "date": date.isoformat(),
        "seed": seed,
        "follow": follow,
        "imbalance_abs_kwh": round(absolute, 3),
        "imbalance_yen": round(absolute * imbalance_price_yen_per_kwh, 1),
        "imbalance_max_slot_kwh": round(float(total["imbalance_kwh"].abs().max()), 3),
        "planned_kwh": round(float(total["planned_kwh"].sum()), 3),
        "metered_kwh": round(float(total["metered_kwh"].sum()), 3),
        "replans": day.replans,
        "slots": total.reset_index().to_dict(orient="records"),
    }


class _Day:
    """The actual day minute by minute, re-planned from the reached state like the live loop."""

    def __init__(
        self, portfolio, profiles, config_path: str, source: str, grid, actual: dict[str, np.ndarray], seed: int
    ):
        self.portfolio, self.profiles, self.config_path, self.source = portfolio, profiles, config_path, source
        self.grid, self.actual, self.seed, self.replans = grid, actual, seed, 0
        first = day_problem(portfolio, profiles, grid.start, p50_series(quantiles_for(source, config_path, grid)))
        self.first = first
        self.soc = {b.id: b.initial_soc_kwh for b in first.batteries} | {e.id: e.initial_soc_kwh for e in first.evs}
        minutes = grid.steps * grid.step_minutes
        self.load_kw = {
            ld.id: _per_minute(actual.get(ld.id, ld.demand_kw), grid.step_minutes) * _wobble(seed, ld.id, minutes)
            for ld in first.loads
        }
        self.pv_kw = {
            p.id: _per_minute(actual.get(p.id, p.available_kw), grid.step_minutes) * _wobble(seed, p.id, minutes)
            for p in first.pvs
        }

    def _plan(self, minute: int) -> tuple[Problem, Schedule]:
        start = self.grid.start + pd.Timedelta(minutes=minute)
        grid = day_grid(self.portfolio, start.date())
        grid = type(grid)(start=start, step_minutes=grid.step_minutes, steps=grid.steps)
        problem = day_problem(
            self.portfolio,
            self.profiles,
            start,
            p50_series(quantiles_for(self.source, self.config_path, grid)),
            initial_soc_kwh=dict(self.soc),
        )
        self.replans += 1
        return problem, solve(problem)

    def play(self, follower: PlanFollower, replan_minutes: int) -> dict[dt.datetime, dict[str, float]]:
        step, start = self.grid.step_minutes, self.grid.start.to_pydatetime()
        meter: dict[dt.datetime, dict[str, float]] = {}
        grid_kw = {g.site: 0.0 for g in self.first.grids}
        problem, plan = self._plan(0)
        plan_minute = 0
        for minute in range(self.grid.steps * step):
            now = start + dt.timedelta(minutes=minute)
            if minute % replan_minutes == 0:
                if minute > 0:
                    problem, plan = self._plan(minute)
                plan_minute = minute
                follower.update_plan(plan.power_kw, step, now - dt.timedelta(days=1) if minute == 0 else now)
            follower.observe(now, grid_kw)
            t_plan, t_day = (minute - plan_minute) // step, minute // step
            targets, steerable = _targets(problem, plan.power_kw, t_plan)
            setpoints = targets | follower.correct(now, grid_kw, steerable)
            power = self._devices(problem, setpoints, t_plan, t_day)
            slot = _slot(now)
            for g in self.first.grids:
                site_power = sum(
                    self._pv(problem, plan.power_kw, p, minute, t_plan) for p in self.first.pvs if p.site == g.site
                )
                site_power -= sum(self.load_kw[ld.id][minute] for ld in self.first.loads if ld.site == g.site)
                site_power += sum(power[b.id] for b in problem.batteries if b.site == g.site)
                site_power += sum(power[e.id] for e in problem.evs if e.charger_site[t_plan] == g.site)
                grid_kw[g.site] = -site_power
                meter.setdefault(slot, {}).setdefault(g.site, 0.0)
                meter[slot][g.site] += -site_power / 60
        return meter

    def _pv(self, problem, plan_kw, pv, minute: int, t_plan: int) -> float:
        forecast = next(p for p in problem.pvs if p.id == pv.id).available_kw[t_plan]
        planned = plan_kw[pv.id].iat[t_plan]
        available = self.pv_kw[pv.id][minute]
        return min(planned, available) if planned < forecast - 1e-6 else available

    def _devices(self, problem, setpoints: dict[str, float], t_plan: int, t_day: int) -> dict[str, float]:
        """Battery and EV powers within their energy limits; the energies move on by a minute."""
        power = {}
        for b in problem.batteries:
            soc = self.soc[b.id]
            most_out = min(b.discharge_max_kw, max(0.0, soc - b.soc_min_kwh) * b.discharge_efficiency * 60)
            most_in = min(b.charge_max_kw, max(0.0, b.soc_max_kwh - soc) / b.charge_efficiency * 60)
            power[b.id] = min(max(setpoints.get(b.id, 0.0), -most_in), most_out)
            self.soc[b.id] -= (
                power[b.id] / b.discharge_efficiency if power[b.id] > 0 else power[b.id] * b.charge_efficiency
            ) / 60
        for ev in problem.evs:
            plugged = ev.charger_site[t_plan] is not None
            soc = self.soc[ev.id]
            most_out = max(0.0, soc - ev.soc_min_kwh) * ev.discharge_efficiency * 60
            most_in = max(0.0, ev.soc_max_kwh - soc) / ev.charge_efficiency * 60
            power[ev.id] = min(max(setpoints.get(ev.id, 0.0), -most_in), most_out) if plugged else 0.0
            moved = power[ev.id] / ev.discharge_efficiency if power[ev.id] > 0 else power[ev.id] * ev.charge_efficiency
            soc -= moved / 60 + ev.drive_kwh[t_plan] / problem.grid.step_minutes
            self.soc[ev.id] = min(max(soc, 0.0), ev.capacity_kwh)
        return power


def _targets(problem: Problem, plan_kw: pd.DataFrame, t: int) -> tuple[dict[str, float], dict[str, list[Steerable]]]:
    """The plan's set-points of step ``t`` and, per site, the devices a follower may move (the
    batteries first, then the plugged EVs)."""
    targets: dict[str, float] = {}
    steerable: dict[str, list[Steerable]] = {}
    for b in problem.batteries:
        targets[b.id] = float(plan_kw[b.id].iat[t])
        steerable.setdefault(b.site, []).append(Steerable(b.id, targets[b.id], -b.charge_max_kw, b.discharge_max_kw))
    for ev in problem.evs:
        site = ev.charger_site[t]
        if site is None:
            continue
        targets[ev.id] = float(plan_kw[ev.id].iat[t])
        low, high = -float(ev.charge_max_kw[t]), float(ev.discharge_max_kw[t])
        steerable.setdefault(site, []).append(
            Steerable(ev.id, targets[ev.id], min(low, targets[ev.id]), max(high, targets[ev.id]))
        )
    return targets, steerable


def _slot(now: dt.datetime) -> dt.datetime:
    utc = now.astimezone(dt.UTC)
    return utc.replace(minute=30 * (utc.minute // 30), second=0, microsecond=0)


def imbalance_comparison(
    config_path: str,
    dates: list[dt.date],
    seeds: list[int],
    source: str = "profiles",
    imbalance_price_yen_per_kwh: float = 30.0,
) -> dict:
    """Each (date, seed) played with and without following: the same day and sample both ways."""
    runs = []
    for k, date in enumerate(dates):
        for seed in seeds:
            sample = seed * 1000 + k  # each day its own forecast errors; both modes the same ones
            pair = {
                mode: imbalance_day(config_path, date, sample, mode == "following", source, imbalance_price_yen_per_kwh)
                for mode in ("following", "open_loop")
            }
            runs.append(
                {
                    "date": date.isoformat(),
                    "seed": sample,
                    **{f"{mode}_imbalance_abs_kwh": r["imbalance_abs_kwh"] for mode, r in pair.items()},
                    **{f"{mode}_imbalance_yen": r["imbalance_yen"] for mode, r in pair.items()},
                }
            )
    days = len(runs)
    return {
        "days": days,
        "following_kwh_per_day": round(sum(r["following_imbalance_abs_kwh"] for r in runs) / days, 3),
        "open_loop_kwh_per_day": round(sum(r["open_loop_imbalance_abs_kwh"] for r in runs) / days, 3),
        "following_yen_per_day": round(sum(r["following_imbalance_yen"] for r in runs) / days, 1),
        "open_loop_yen_per_day": round(sum(r["open_loop_imbalance_yen"] for r in runs) / days, 1),
        "runs": runs,
    }
