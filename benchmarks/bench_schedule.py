"""Schedule benchmark: build and solve times (median of 5), MIP gap and peak memory for the
reference portfolio (30-min steps, 48 h) and a generated city-scale portfolio (10 sites,
50 bidirectional chargers, 100 vehicles, 5-min steps, 24 h), on an ordinary day and on a day
with negative midday prices, where the charge/discharge binaries are needed."""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
from pathlib import Path

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
    grids = tuple(
        dataclasses.replace(
            g, import_price_yen_per_kwh=np.where(midday, -2.0, g.import_price_yen_per_kwh), carbon_price_yen_per_kg=0.0
        )
        for g in problem.grids
    )
    return dataclasses.replace(problem, grids=grids)


def _measure(name: str, problem, repeats: int) -> list[dict]:
    runs = [solve(problem) for _ in range(repeats)]
    rows = []
    for metric in ("build_s", "load_s", "solve_s"):
        values = [getattr(r, metric) if hasattr(r, metric) else getattr(r.report, metric) for r in runs]
        rows.append({"name": name, "metric": f"{metric}_median", "value": statistics.median(values), "unit": "s"})
    totals = [r.build_s + (r.report.load_s or 0.0) + r.solve_s + (r.report.read_s or 0.0) for r in runs]
    rows.append({"name": name, "metric": "total_s_median", "value": statistics.median(totals), "unit": "s"})
    rows.append(
        {
            "name": name,
            "metric": "mip_gap_max",
            "value": max((r.mip_gap for r in runs if r.mip_gap is not None), default=float("nan")),
            "unit": "fraction",
        }
    )
    rows.append({"name": name, "metric": "binaries", "value": runs[0].report.binary_count, "unit": "count"})
    rows.append(
        {
            "name": name,
            "metric": "statuses_optimal",
            "value": sum(r.status == "optimal" for r in runs),
            "unit": f"of {repeats}",
        }
    )
    return rows


# VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts from its parent's size at fork
PEAK_RSS_CHILD = """
from pathlib import Path
from benchmarks.bench_schedule import {problem}
from ems.optimise import solve
solve({problem}({args}))
peak_kib = next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(peak_kib / 1024)
"""


def _peak_rss_mib(problem: str, args: str = "") -> float:
    """Peak memory of a fresh process that builds and solves one problem (others' memory excluded)."""
    code = PEAK_RSS_CHILD.format(problem=problem, args=args)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return float(out.stdout.strip().splitlines()[-1])


def reference_problem():
    return plan_inputs(REFERENCE, pd.Timestamp("2026-04-15", tz="Asia/Tokyo")).problem


def run() -> list[dict]:
    reference = reference_problem()
    city = city_problem()
    rows = _measure("schedule/reference-30min-48h", reference, REPEATS)
    rows += _measure("schedule/city-5min-24h", city, REPEATS)
    rows += _measure("schedule/city-5min-24h-negative-midday", negative_midday(city), 3)
    rows.append(
        {"name": "schedule/city-5min-24h", "metric": "variables_evs", "value": len(city.evs), "unit": "vehicles"}
    )
    rows.append(
        {
            "name": "schedule/reference-30min-48h",
            "metric": "peak_rss_process",
            "value": _peak_rss_mib("reference_problem"),
            "unit": "MiB",
        }
    )
    rows.append(
        {
            "name": "schedule/city-5min-24h",
            "metric": "peak_rss_process",
            "value": _peak_rss_mib("city_problem"),
            "unit": "MiB",
        }
    )
    return rows
