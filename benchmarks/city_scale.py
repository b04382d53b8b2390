"""A generated city-scale portfolio for benchmarks: 10 sites, 50 bidirectional chargers,
100 vehicles sharing them in shifts, on the reference portfolio's tariff and profiles.

Vehicles have no home charger: their charging windows are generated here, as the dispatcher
would publish them, two vehicles per charger in disjoint windows.
"""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from ems.config import parse_portfolio
from ems.fleet import ChargingWindow, VehiclePlan

REFERENCE = Path(__file__).resolve().parent.parent / "config" / "arao.toml"
SITES, CHARGERS_PER_SITE, VEHICLES_PER_CHARGER = 10, 5, 2
PROFILES = ("office_weekday", "cultural_centre", "school", "community_hall", "depot")


def city_portfolio(seed: int = 7):
    rng = np.random.default_rng(seed)
    raw = tomllib.loads(REFERENCE.read_text())
    city = {key: copy.deepcopy(raw[key]) for key in ("portfolio", "planning", "tariffs", "profiles")}
    city["portfolio"]["name"] = "Generated city-scale portfolio"
    city["portfolio"]["depot_site"] = None
    city["portfolio"].pop("depot_site")
    city.update(sites=[], grid_connections=[], pv_arrays=[], loads=[], batteries=[], chargers=[], vehicles=[])
    for s in range(SITES):
        site = f"site{s:02d}"
        peak = float(rng.uniform(60, 250))
        city["sites"].append({"id": site, "latitude_deg": 32.98 + 0.002 * s, "longitude_deg": 130.43 + 0.002 * s})
        city["grid_connections"].append(
            {
                "id": f"{site}_grid",
                "site": site,
                "import_limit_kw": peak * 1.6 + 60,
                "export_limit_kw": peak * 0.3,
                "contract_demand_kw": peak * 1.1,
            }
        )
        city["pv_arrays"].append({"id": f"{site}_pv", "site": site, "capacity_kwp": float(rng.uniform(20, 120))})
        city["loads"].append(
            {"id": f"{site}_load", "site": site, "peak_kw": peak, "profile": PROFILES[s % len(PROFILES)]}
        )
        city["batteries"].append(
            {
                "id": f"{site}_bess",
                "site": site,
                "capacity_kwh": float(rng.uniform(40, 200)),
                "charge_power_kw": 30.0,
                "discharge_power_kw": 30.0,
                "degradation_cost_yen_per_kwh": 2.0,
            }
        )
        for c in range(CHARGERS_PER_SITE):
            city["chargers"].append(
                {"id": f"{site}_c{c}", "site": site, "charge_power_kw": 6.0, "discharge_power_kw": 6.0}
            )
    for v in range(len(city["chargers"]) * VEHICLES_PER_CHARGER):
        city["vehicles"].append(
            {
                "id": f"ev{v:03d}",
                "battery_kwh": float(rng.choice([40.0, 60.0])),
                "consumption_kwh_per_km": 0.15,
                "v2g_allowed": bool(rng.random() < 0.8),
                "initial_soc_fraction": float(rng.uniform(0.3, 0.8)),
            }
        )
    return parse_portfolio(city, "<generated city>")


def city_plans(portfolio, start: pd.Timestamp, hours: int, seed: int = 7) -> dict[str, VehiclePlan]:
    """Two vehicles per charger: one charges overnight, one in the middle of the day."""
    rng = np.random.default_rng(seed + 1)
    plans = {}
    begin = start.to_pydatetime()
    for i, vehicle in enumerate(portfolio.vehicles):
        charger = portfolio.chargers[i // VEHICLES_PER_CHARGER]
        usable = vehicle.battery_kwh * (vehicle.soc_max_fraction - vehicle.soc_min_fraction)
        windows = []
        for day in range(hours // 24 + 1):
            base = begin + dt.timedelta(days=day)
            if i % 2 == 0:  # night shift parks by day
                spans = [(9.5 + rng.uniform(0, 1), 16.5 + rng.uniform(0, 1))]
            else:  # day shift parks overnight
                spans = [(-3.0 + rng.uniform(0, 1), 7.0 + rng.uniform(0, 1.5))]
            for plug_in_h, plug_out_h in spans:
                trip_kwh = float(rng.uniform(0.3, 0.7) * usable)
                windows.append(
                    ChargingWindow(
                        charger_id=charger.id,
                        plug_in=base + dt.timedelta(hours=plug_in_h),
                        plug_out=base + dt.timedelta(hours=plug_out_h),
                        departure_energy_kwh=vehicle.battery_kwh * vehicle.soc_min_fraction
                        + vehicle.reserve_kwh
                        + trip_kwh,
                        trip_energy_kwh=trip_kwh,
                    )
                )
        plans[vehicle.id] = VehiclePlan(vehicle_id=vehicle.id, issued=begin, windows=tuple(windows))
    return plans


def city_problem(step_minutes: int = 5, hours: int = 24, seed: int = 7):
    from ems.config import profile_values
    from ems.optimise.inputs import problem_from_portfolio

    portfolio = city_portfolio(seed)
    start = pd.Timestamp("2026-04-15", tz=portfolio.portfolio.timezone)
    profiles = {name: profile_values(profile, REFERENCE) for name, profile in portfolio.profiles.items()}
    return problem_from_portfolio(
        portfolio,
        start,
        profiles,
        plans=city_plans(portfolio, start, hours, seed),
        horizon_hours=hours,
        step_minutes=step_minutes,
    )
