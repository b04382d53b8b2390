"""Schedule benchmark: build and solve times (median of 5), MIP gap and peak memory for the
reference portfolio (30-min steps, 48 h) and a generated city-scale portfolio (10 sites,
50 bidirectional chargers, 100 vehicles, 5-min steps, 24 h), on an ordinary day and on a day
with negative midday prices, where the charge/discharge binaries are needed."""

from __future__ import annotations

import dataclasses
import resource
import statistics

import numpy as np
import pandas as pd

from benchmarks.city_scale import REFERENCE, city_problem
from ems.optimise import solve
from ems.planning import plan_inputs

REPEATS = 5


def negative_midday(problem):
    """The same problem with import prices of -2 yen/kWh from 10:00 to 14:00 local."""
    hours = problem.grid.index.tz_convert("Asia/Tokyo").hour
    midday = (hours >= 10) & (hours < 14)
    grids = tuple(dataclasses.replace(g, import_price_yen_per_kwh=np.where(midday, -2.0, g.import_price_yen_per_kwh),
                                      carbon_price_yen_per_kg=0.0) for g in problem.grids)
    return dataclasses.replace(problem, grids=grids)


def _measure(name: str, problem, repeats: int) -> list[dict]:
    runs = [solve(problem) for _ in range(repeats)]
    rows = []
    for metric in ("build_s", "load_s", "solve_s"):
        values = [getattr(r, metric) if hasattr(r, metric) else r.shortfalls[metric] for r in runs]
        rows.append({"name": name, "metric": f"{metric}_median", "value": statistics.median(values), "unit": "s"})
    totals = [r.build_s + r.shortfalls["load_s"] + r.solve_s + r.shortfalls["read_s"] for r in runs]
    rows.append({"name": name, "metric": "total_s_median", "value": statistics.median(totals), "unit": "s"})
    rows.append({"name": name, "metric": "mip_gap_max", "value": max(r.mip_gap for r in runs), "unit": "fraction"})
    rows.append({"name": name, "metric": "binaries", "value": runs[0].shortfalls["binary_count"], "unit": "count"})
    rows.append({"name": name, "metric": "statuses_optimal", "value": sum(r.status == "optimal" for r in runs), "unit": f"of {repeats}"})
    rows.append({"name": name, "metric": "peak_rss_after", "value": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "unit": "MiB"})
    return rows


def run() -> list[dict]:
    start = pd.Timestamp("2026-04-15", tz="Asia/Tokyo")
    reference = plan_inputs(REFERENCE, start)[1]
    city = city_problem()
    rows = _measure("schedule/reference-30min-48h", reference, REPEATS)
    rows += _measure("schedule/city-5min-24h", city, REPEATS)
    rows += _measure("schedule/city-5min-24h-negative-midday", negative_midday(city), 3)
    rows.append({"name": "schedule/city-5min-24h", "metric": "variables_evs", "value": len(city.evs), "unit": "vehicles"})
    return rows
