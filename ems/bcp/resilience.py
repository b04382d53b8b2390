"""Resilience statistics in the manner of REopt: start the outage at every hour of a
representative period, plan it, and count the hours each shelter survives.

Each start is planned once for the longest duration; the hours survived in an outage of d hours
are min(hours up, d), and the probability of surviving d hours is the share of starts with at
least d hours up. The same runs without the fleet give the fleet's value to the shelters.
"""

from __future__ import annotations

import datetime as dt
from typing import Mapping

import pandas as pd

from ems.bcp.inputs import bcp_problem_from_portfolio
from ems.bcp.outage import Outage
from ems.bcp.solve import plan_bcp
from ems.config.schema import Portfolio


def survival_runs(portfolio: Portfolio, profiles: Mapping, sites: tuple[str, ...], starts: list[dt.datetime],
                  hours: float, pv_scale: float = 1.0, initial_soc_kwh: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per (start, fleet or not, shelter): hours up in an outage of ``hours``."""
    rows = []
    for start in starts:
        outage = Outage(name="resilience", start=start, duration_hours=hours, sites=sites, pv_scale=pv_scale)
        for with_fleet in (True, False):
            plan = plan_bcp(bcp_problem_from_portfolio(portfolio, outage, profiles, initial_soc_kwh, include_fleet=with_fleet))
            for shelter, up_h in plan.shelter_hours().items():
                rows.append({"start": start.isoformat(), "with_fleet": with_fleet, "shelter": shelter, "hours_up": up_h,
                             "solve_s": plan.solve_s})
    return pd.DataFrame(rows)


def survival_statistics(runs: pd.DataFrame, durations: list[float]) -> pd.DataFrame:
    """Per fleet case, shelter and duration: hours survived (min, mean, max) and P(survive)."""
    rows = []
    for (with_fleet, shelter), group in runs.groupby(["with_fleet", "shelter"]):
        for d in durations:
            survived = group["hours_up"].clip(upper=d)
            rows.append({"with_fleet": bool(with_fleet), "shelter": shelter, "duration_hours": d,
                         "hours_min": float(survived.min()), "hours_mean": round(float(survived.mean()), 2),
                         "hours_max": float(survived.max()), "probability": round(float((group["hours_up"] >= d - 1e-9).mean()), 4)})
    return pd.DataFrame(rows)
