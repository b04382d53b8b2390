"""Resilience statistics in the manner of REopt: start the outage at every hour of a
representative period, plan it, and count the hours each shelter survives.

Each start is planned once for the longest duration; the hours survived in an outage of d hours
are min(hours up, d), and the probability of surviving d hours is the share of starts with at
least d hours up. The same runs without the fleet give the fleet's value to the shelters. Each
run also keeps the shelter's upper bound (:mod:`ems.bcp.bound`), so the statistics say how far
the plans are from what the energy allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

from ems.bcp.inputs import bcp_problem_from_portfolio
from ems.bcp.outage import Outage
from ems.bcp.solve import plan_bcp
from ems.config.schema import Portfolio


def survival_runs(
    portfolio: Portfolio,
    profiles: Mapping,
    sites: tuple[str, ...],
    starts: list[dt.datetime],
    hours: float,
    pv_scale: float = 1.0,
    initial_soc_kwh: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per (start, fleet or not, shelter): hours up in an outage of ``hours``."""
    rows = []
    for start in starts:
        outage = Outage(name="resilience", start=start, duration_hours=hours, sites=sites, pv_scale=pv_scale)
        for with_fleet in (True, False):
            plan = plan_bcp(
                bcp_problem_from_portfolio(portfolio, outage, profiles, initial_soc_kwh, include_fleet=with_fleet)
            )
            bounds = plan.all_upper_bound_hours()
            for shelter, up_h in plan.shelter_hours().items():
                rows.append(
                    {
                        "start": start.isoformat(),
                        "with_fleet": with_fleet,
                        "shelter": shelter,
                        "hours_up": up_h,
                        "bound_hours": bounds[shelter],
                        "solve_s": plan.solve_s,
                    }
                )
    return pd.DataFrame(rows)


def survival_statistics(runs: pd.DataFrame, durations: list[float]) -> pd.DataFrame:
    """Per fleet case, shelter and duration: hours survived (min, mean, max), P(survive), and the
    same mean and probability for the upper bound (what no plan can beat)."""
    rows = []
    for (with_fleet, shelter), group in runs.groupby(["with_fleet", "shelter"]):
        for d in durations:
            survived = group["hours_up"].clip(upper=d)
            bound = group["bound_hours"].clip(upper=d) if "bound_hours" in group else survived
            rows.append(
                {
                    "with_fleet": bool(with_fleet),
                    "shelter": shelter,
                    "duration_hours": d,
                    "hours_min": float(survived.min()),
                    "hours_mean": round(float(survived.mean()), 2),
                    "hours_max": float(survived.max()),
                    "probability": round(float((group["hours_up"] >= d - 1e-9).mean()), 4),
                    "bound_hours_mean": round(float(bound.mean()), 2),
                    "bound_probability": round(float((bound >= d - 1e-9).mean()), 4),
                }
            )
    return pd.DataFrame(rows)


def resilience_figure(stats: pd.DataFrame, runs: pd.DataFrame, title: str):
    """Left: probability of surviving each duration, per shelter, with and without the fleet.
    Right: mean hours survived in the longest outage: the fleet's value to each shelter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curves, bars) = plt.subplots(1, 2, figsize=(12, 4.2))
    shelters = sorted(stats["shelter"].unique())
    colours = dict(zip(shelters, ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"]))
    durations = sorted(stats["duration_hours"].unique())
    width = 0.8 / (2 * len(shelters))
    for j, (shelter, with_fleet) in enumerate((s, f) for s in shelters for f in (False, True)):
        part = stats[(stats["shelter"] == shelter) & (stats["with_fleet"] == with_fleet)].set_index("duration_hours")
        values = [float(part["probability"].get(d, 0.0)) for d in durations]
        positions = [i - 0.4 + width * (j + 0.5) for i in range(len(durations))]
        curves.bar(
            positions,
            [max(v, 0.01) for v in values],
            width=width,
            color=colours[shelter],
            alpha=1.0 if with_fleet else 0.35,
            hatch="" if with_fleet else "//",
            label=f"{shelter}, {'with' if with_fleet else 'without'} fleet",
        )
    curves.set_xticks(range(len(durations)), [f"{d:.0f} h" for d in durations])
    curves.set_xlabel("outage duration")
    curves.set_ylabel("probability of surviving it")
    curves.set_ylim(0, 1.05)
    curves.grid(alpha=0.3, axis="y")
    curves.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    longest = stats["duration_hours"].max()
    mean = stats[stats["duration_hours"] == longest].pivot(index="shelter", columns="with_fleet", values="hours_mean")
    x = range(len(mean.index))
    bars.bar([i - 0.2 for i in x], mean.get(False, 0.0), width=0.4, color="lightgrey", label="batteries and PV only")
    bars.bar([i + 0.2 for i in x], mean.get(True, 0.0), width=0.4, color="tab:blue", label="with the taxi fleet")
    bars.set_xticks(list(x), mean.index, fontsize=8)
    bars.set_ylabel(f"mean hours survived (outage of {longest:.0f} h)")
    bars.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    bars.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{title} ({runs['start'].nunique()} start times)", fontsize=10)
    fig.tight_layout()
    return fig
