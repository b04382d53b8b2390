"""Nightly simulations on the reference portfolio.

1. Sweep throughput: the same 36 scenarios (flexibility per slot, forecast-error samples) run
   on 1 worker (in-process) and on a 2-worker Dask LocalCluster started beforehand (its start-up
   is reported apart); scenarios per minute and scaling efficiency (rate on 2 / (2 x rate on 1)).
   The machine's other load counts: run it on an idle machine for a clean figure.
2. Rolling plan versus perfect foresight over a simulated week (13-19 April 2026): each day a
   seeded forecast-error sample plays the actual day; the rolling plan re-plans every hour on the
   P50 forecast; perfect foresight solves the actual day; the rule-based baseline runs on it.
   Captured savings = (rule - rolling) / (rule - perfect), on the objective (energy, demand
   charge, CO2 price, degradation, value of stored energy at the end), summed over the week.
   Each day starts from the configured initial state.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from simulations.nightly import NightlyOptions, prepare_night
from simulations.scenarios import Scenario, run_scenario
from simulations.sweep import ResultStore, run_sweep

CONFIG = "config/arao.toml"
DAY = dt.date(2026, 4, 15)
WEEK = [dt.date(2026, 4, 13) + dt.timedelta(days=k) for k in range(7)]


def _throughput_rows() -> list[dict]:
    from dask.distributed import LocalCluster

    night = prepare_night(CONFIG, DAY, options=NightlyOptions())
    scenarios = [
        Scenario(id=f"flex-down-slot-{t:02d}", kind="flex", direction="down", steps=(t,)) for t in range(24, 42)
    ]
    scenarios += [Scenario(id=f"sample-{k}", kind="sample", sample=k) for k in range(18)]

    def timed(**where) -> float:
        with tempfile.TemporaryDirectory() as directory:
            store = ResultStore(Path(directory), night.ctx.fingerprint())
            started = time.perf_counter()
            run_sweep(night.ctx, scenarios, store, progress=False, **where)
            return time.perf_counter() - started

    one = len(scenarios) / timed(workers=1) * 60
    started = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        startup_s = time.perf_counter() - started
        two = len(scenarios) / timed(scheduler=cluster.scheduler_address) * 60
    return [
        {"name": "nightly_sweep_1_worker", "metric": "scenarios_per_min", "value": round(one, 2), "unit": "1/min"},
        {"name": "nightly_sweep_2_workers", "metric": "scenarios_per_min", "value": round(two, 2), "unit": "1/min"},
        {
            "name": "nightly_sweep_scaling",
            "metric": "efficiency_2_workers",
            "value": round(two / (2 * one), 3),
            "unit": "ratio",
        },
        {"name": "nightly_sweep_cluster_start", "metric": "elapsed_s", "value": round(startup_s, 2), "unit": "s"},
    ]


def _week_rows() -> list[dict]:
    totals = {
        "rolling_objective_yen": 0.0,
        "perfect_objective_yen": 0.0,
        "rule_objective_yen": 0.0,
        "rolling_demand_charge_yen": 0.0,
        "perfect_demand_charge_yen": 0.0,
        "rule_demand_charge_yen": 0.0,
    }
    started = time.perf_counter()
    for day in WEEK:
        night = prepare_night(CONFIG, day, event_files=[], options=NightlyOptions())
        result = run_scenario(night.ctx, Scenario(id="rolling-vs-perfect", kind="rolling"))
        for key in totals:
            totals[key] += result[key]
    captured = (totals["rule_objective_yen"] - totals["rolling_objective_yen"]) / (
        totals["rule_objective_yen"] - totals["perfect_objective_yen"]
    )
    gap = totals["rolling_objective_yen"] - totals["perfect_objective_yen"]
    without = {
        k: totals[f"{k}_objective_yen"] - totals[f"{k}_demand_charge_yen"] for k in ("rolling", "perfect", "rule")
    }
    captured_energy = (without["rule"] - without["rolling"]) / (without["rule"] - without["perfect"])
    return [
        {
            "name": "nightly_week_rolling",
            "metric": "objective_yen",
            "value": round(totals["rolling_objective_yen"], 1),
            "unit": "yen",
        },
        {
            "name": "nightly_week_perfect_foresight",
            "metric": "objective_yen",
            "value": round(totals["perfect_objective_yen"], 1),
            "unit": "yen",
        },
        {
            "name": "nightly_week_rule_based",
            "metric": "objective_yen",
            "value": round(totals["rule_objective_yen"], 1),
            "unit": "yen",
        },
        {"name": "nightly_week_gap", "metric": "rolling_minus_perfect_yen", "value": round(gap, 1), "unit": "yen"},
        {
            "name": "nightly_week_gap",
            "metric": "rolling_over_perfect_percent",
            "value": round(100 * gap / totals["perfect_objective_yen"], 2),
            "unit": "%",
        },
        {
            "name": "nightly_week_captured_savings",
            "metric": "share_of_perfect_saving",
            "value": round(100 * captured, 2),
            "unit": "%",
        },
        {
            "name": "nightly_week_captured_savings",
            "metric": "share_without_demand_charge",
            "value": round(100 * captured_energy, 2),
            "unit": "%",
        },
        {
            "name": "nightly_week_demand_charge",
            "metric": "rolling_yen",
            "value": round(totals["rolling_demand_charge_yen"], 1),
            "unit": "yen",
        },
        {
            "name": "nightly_week_demand_charge",
            "metric": "rule_based_yen",
            "value": round(totals["rule_demand_charge_yen"], 1),
            "unit": "yen",
        },
        {
            "name": "nightly_week_run",
            "metric": "elapsed_s",
            "value": round(time.perf_counter() - started, 1),
            "unit": "s",
        },
    ]


def _event_rows() -> list[dict]:
    """The example events of 15 April delivered against the guideline's settlement baseline and
    against the plan without the event (the gap is what the baseline, not the portfolio, "delivers")."""
    night = prepare_night(CONFIG, DAY, options=NightlyOptions())
    rows = []
    for index, event in enumerate(night.ctx.events):
        result = run_scenario(night.ctx, Scenario(id=f"event-{event.id}", kind="event", event_index=index))
        for key in ("vs_baseline", "vs_plan_without_event"):
            rows.append(
                {
                    "name": f"nightly_event_{event.id}",
                    "metric": f"delivered_kwh_{key}",
                    "value": result[key]["delivered_kwh"],
                    "unit": "kWh",
                }
            )
        rows.append(
            {
                "name": f"nightly_event_{event.id}",
                "metric": "adjustment_kw",
                "value": result["baseline"]["adjustment_kw"],
                "unit": "kW",
            }
        )
    return rows


def _machine_rows() -> list[dict]:
    """The load average while the benchmark ran: timings are only comparable at a similar load."""
    return [
        {"name": "nightly_machine", "metric": "load_average_1min", "value": round(os.getloadavg()[0], 2), "unit": "1"},
        {"name": "nightly_machine", "metric": "cpus", "value": os.cpu_count(), "unit": "1"},
    ]


def run() -> list[dict]:
    return _machine_rows() + _throughput_rows() + _week_rows() + _event_rows() + _machine_rows()
