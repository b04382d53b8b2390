"""BCP benchmark: plan time and quality on the reference portfolio.

* ``typhoon-72h``: the shipped outage (shelters and city hall lose the grid, the depot keeps
  it): plan time (median of 3), shelter hours as a share of the upper bound, served share, and
  the energy each called vehicle delivers as a multiple of its usable battery.
* ``citywide-72h``: every site loses the grid, so the fleet has only what it holds: the same
  figures where energy is short.
* ``blackout-168h``: the shipped week-long blackout of every site (``config/outages/blackout-168h.toml``).

Shelter hours are compared with the energy bound (``ems/bcp/bound.py``): per shelter, and for all
shelters up together (``hours_all_up`` against ``joint_upper_bound_hours``).
* ``resilience``: outages of 168 h from every hour of a day (the config's profiles repeat daily,
  so these stand for every hour of a week) on the typhoon's sites, and from every 6 h on the
  city-wide outage (each of those plans uses the solver's full time limit), with and without the
  fleet: the probability that each shelter survives 24, 72 and 168 h, and the mean hours
  survived over the shelters.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

from ems.bcp import bcp_problem_from_portfolio, load_outage, plan_bcp
from ems.bcp.resilience import survival_runs, survival_statistics
from ems.config import load_portfolio, profile_values

CONFIG = "config/arao.toml"
TYPHOON = "config/outages/typhoon-72h.toml"
BLACKOUT = "config/outages/blackout-168h.toml"
CITYWIDE = (
    "name=City-wide, 72 h; start=2026-09-15T14:00+09:00; hours=72; pv_scale=0.3; "
    "sites=city_hall,cultural_centre,taxi_depot,shelter_north,shelter_central,shelter_south"
)


def _plan_rows(name: str, portfolio, profiles, outage_spec: str, repeats: int) -> list[dict]:
    outage = load_outage(outage_spec)
    times, plans = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        plans.append(plan_bcp(bcp_problem_from_portfolio(portfolio, outage, profiles)))
        times.append(time.perf_counter() - started)
    summary = plans[0].summary()
    hours, bound = summary["shelter_hours"], summary["upper_bound_hours"]
    multiples = list(summary["vehicle_delivered_per_usable_battery"].values()) or [0.0]
    row = lambda metric, value, unit: {"name": f"bcp {name}", "metric": metric, "value": float(value), "unit": unit}  # noqa: E731
    return [
        row("plan_s_median", statistics.median(times), "s"),
        row(
            "shelter_hours_share_of_bound_min", min(hours[s] / bound[s] if bound[s] else 1.0 for s in hours), "fraction"
        ),
        row("shelter_hours_share_of_bound_total", sum(hours.values()) / max(1e-9, sum(bound.values())), "fraction"),
        row("hours_all_up", summary["hours_all_up"], "h"),
        row("joint_upper_bound_hours", summary["joint_upper_bound_hours"], "h"),
        *[row(f"hours_up_{s}", hours[s], "h") for s in sorted(hours)],
        *[row(f"upper_bound_hours_{s}", bound[s], "h") for s in sorted(bound)],
        row("ride_service_kwh", summary["ride_service_kwh"], "kWh"),
        row("recharged_kwh", sum(summary["recharged_kwh_by_site"].values()), "kWh"),
        row("served_share", summary["served_share"], "fraction"),
        row("vehicles_assigned", len(summary["vehicles_assigned"]), "count"),
        row("vehicle_km", summary["vehicle_km"], "km"),
        row("delivered_per_usable_battery_max", max(multiples), "multiple"),
        row("delivered_per_usable_battery_mean", statistics.mean(multiples), "multiple"),
        row("mip_gap", summary["mip_gap"] or 0.0, "fraction"),
    ]


def _resilience_rows(name: str, portfolio, profiles, outage_spec: str, starts: int, every_hours: int) -> list[dict]:
    outage = load_outage(outage_spec)
    first = outage.start.replace(hour=0)
    runs = survival_runs(
        portfolio,
        profiles,
        outage.sites,
        [first + dt.timedelta(hours=every_hours * i) for i in range(starts)],
        168,
        outage.pv_scale,
    )
    stats = survival_statistics(runs, [24, 72, 168])
    rows = []
    for with_fleet, label in ((True, "with_fleet"), (False, "without_fleet")):
        part = stats[stats["with_fleet"] == with_fleet]
        for record in part.itertuples():
            rows.append(
                {
                    "name": f"bcp resilience {name}",
                    "metric": f"p_survive_{record.duration_hours:.0f}h_{label}_{record.shelter}",
                    "value": float(record.probability),
                    "unit": "probability",
                }
            )
        rows.append(
            {
                "name": f"bcp resilience {name}",
                "metric": f"hours_mean_168h_{label}",
                "value": float(part[part["duration_hours"] == 168]["hours_mean"].mean()),
                "unit": "h",
            }
        )
    rows.append({"name": f"bcp resilience {name}", "metric": "starts", "value": float(starts), "unit": "count"})
    return rows


def run() -> list[dict]:
    portfolio = load_portfolio(CONFIG)
    profiles = {name: profile_values(p, CONFIG) for name, p in portfolio.profiles.items()}
    rows = _plan_rows("typhoon-72h", portfolio, profiles, TYPHOON, repeats=3)
    rows += _plan_rows("citywide-72h", portfolio, profiles, CITYWIDE, repeats=1)
    rows += _plan_rows("blackout-168h", portfolio, profiles, BLACKOUT, repeats=1)
    rows += _resilience_rows("typhoon-sites", portfolio, profiles, TYPHOON, starts=24, every_hours=1)
    rows += _resilience_rows("citywide", portfolio, profiles, CITYWIDE, starts=4, every_hours=6)
    return rows
