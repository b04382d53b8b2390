"""Dispatcher benchmarks.

(a) City scale: the reference portfolio's 12 four-seat taxis and 200 generated requests over a
    10-hour service day, replayed with the ILP (pooling), insertion and no-pooling policies.
    A sweep then replays the same log on larger fleets (copies of the configured taxis) to show
    what the wait and the pooling saving need.
(c) Hindsight: the same logs solved with every request known in advance (PyVRP, see
    ``benchmarks.dispatch_hindsight``) on the same travel model, fleet, rider limits and hours;
    the dispatcher's km and wait as ratios of that plan, the 12-taxi placement bound on wait,
    the dispatcher variants tried (the km/wait trade-off curve), seeds 0-3 and an 800-request
    log per rider served, and a day on 30 kWh batteries (energy rules). ``DISPATCH_HINDSIGHT_S``
    sets PyVRP's time per solve (default 30 s).
(b) Scale-up: 500 four-seat vehicles and 10,000 requests per hour in a 30 km square; the wall
    time of each 30 s batch assignment (``DISPATCH_BENCH_MINUTES`` simulated minutes, default 20).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
from pathlib import Path

import numpy as np

from dispatch.assign import Policy
from dispatch.clock import ServiceClock
from dispatch.demand import DemandModel, generate_requests
from dispatch.fleet import ChargerSpec, FleetSetup, VehicleSpec, fleet_from_portfolio
from dispatch.model import Point, Request
from dispatch.requests_io import ServiceArea, read_requests
from dispatch.router import StraightLineRouter, make_router
from dispatch.simulate import Simulation, kpis
from ems.config import load_portfolio

CONFIG = Path(__file__).resolve().parent.parent / "config" / "arao.toml"
DAY = dt.date(2026, 4, 15)
CITY_FIGURES = (
    "served_share",
    "mean_wait_s",
    "p95_wait_s",
    "shared_ride_share",
    "mean_occupancy",
    "vehicle_km",
    "empty_km_share",
    "mean_detour_ratio",
    "charging_stops",
    "reassigned_riders",
    "assign_ms_p95",
)
UNITS = {"mean_wait_s": "s", "p95_wait_s": "s", "vehicle_km": "km", "assign_ms_p95": "ms"}


def _city_log(out_dir: Path, portfolio, n_requests: int = 200, seed: int = 0):
    path = out_dir / f"requests_{n_requests}_seed{seed}.csv"
    generate_requests(DAY, n_requests, portfolio.portfolio.timezone, seed=seed).to_csv(path, index=False)
    info = portfolio.portfolio
    return read_requests(
        path, ServiceArea(Point(info.latitude_deg, info.longitude_deg), info.service_area_km), info.timezone, 4
    )


def city_scale(out_dir: Path) -> list[dict]:
    portfolio = load_portfolio(CONFIG)
    settings = portfolio.dispatch
    log = _city_log(out_dir, portfolio)
    setup = fleet_from_portfolio(portfolio, log.clock.date)
    rows, km = [], {}
    for policy in Policy:
        router = make_router(settings.speed_kmh, settings.detour_factor, None)
        result = Simulation(setup, log.requests, router, settings, policy, DemandModel(len(log.requests))).run()
        figures = kpis(result)
        km[policy] = figures["vehicle_km"]
        for key in CITY_FIGURES:
            rows.append(
                {
                    "name": f"dispatch_city_{policy.value}",
                    "metric": key,
                    "value": float(figures[key]),
                    "unit": UNITS.get(key, ""),
                }
            )
    for policy in (Policy.ILP, Policy.INSERTION):
        saving = 1.0 - km[policy] / km[Policy.NO_POOLING]
        rows.append(
            {
                "name": f"dispatch_city_{policy.value}",
                "metric": "vehicle_km_saving_vs_no_pooling",
                "value": saving,
                "unit": "share",
            }
        )
    return rows


def fleet_sweep(out_dir: Path, sizes=(18, 24, 36)) -> list[dict]:
    """The city log on larger fleets: mean wait and the pooling saving per fleet size. The extra
    taxis are copies of the configured ones (same battery, seats and home charger)."""
    portfolio = load_portfolio(CONFIG)
    settings = portfolio.dispatch
    log = _city_log(out_dir, portfolio)
    base = fleet_from_portfolio(portfolio, log.clock.date)
    rows = []
    for size in sizes:
        vehicles = tuple(
            dataclasses.replace(base.vehicles[i % len(base.vehicles)], vehicle_id=f"taxi-{i + 1:02d}")
            for i in range(size)
        )
        setup = dataclasses.replace(base, vehicles=vehicles)
        figures = {}
        for policy in (Policy.ILP, Policy.NO_POOLING):
            router = make_router(settings.speed_kmh, settings.detour_factor, None)
            figures[policy] = kpis(
                Simulation(setup, log.requests, router, settings, policy, DemandModel(len(log.requests))).run()
            )
        name = f"dispatch_city_fleet{size}"
        ilp, alone = figures[Policy.ILP], figures[Policy.NO_POOLING]
        rows += [
            {"name": name, "metric": "served_share", "value": ilp["served_share"], "unit": "share"},
            {"name": name, "metric": "mean_wait_s", "value": ilp["mean_wait_s"], "unit": "s"},
            {"name": name, "metric": "mean_wait_s_no_pooling", "value": alone["mean_wait_s"], "unit": "s"},
            {"name": name, "metric": "shared_ride_share", "value": ilp["shared_ride_share"], "unit": "share"},
            {"name": name, "metric": "vehicle_km", "value": ilp["vehicle_km"], "unit": "km"},
            {
                "name": name,
                "metric": "vehicle_km_saving_vs_no_pooling",
                "value": 1.0 - ilp["vehicle_km"] / alone["vehicle_km"],
                "unit": "share",
            },
        ]
    return rows


def scale_up(
    minutes: float,
    policy: Policy = Policy.ILP,
    n_vehicles: int = 500,
    requests_per_h: float = 10_000,
    side_km: float = 30.0,
    reassign: bool = True,
) -> list[dict]:
    rng = np.random.default_rng(1)
    centre = Point(33.0, 130.5)
    km_lat = 1 / 111.195
    km_lon = km_lat / math.cos(math.radians(centre.lat))

    def point(x_km: float, y_km: float) -> Point:
        x = min(max(x_km, -side_km / 2), side_km / 2)
        y = min(max(y_km, -side_km / 2), side_km / 2)
        return Point(centre.lat + y * km_lat, centre.lon + x * km_lon)

    start_s = 9 * 3600.0
    shifts = ((0.0, 86400.0),)
    chargers = tuple(
        ChargerSpec(f"c{i:02d}", point(*rng.uniform(-side_km / 2, side_km / 2, 2)), 50.0) for i in range(40)
    )
    vehicles = tuple(
        VehicleSpec(
            f"v{i:03d}", 4, 40.0, 0.15, 4.0, 38.0, 5.0, float(rng.uniform(20, 38)), chargers[i % 40].charger_id, shifts
        )
        for i in range(n_vehicles)
    )
    n_requests = int(requests_per_h * minutes / 60)
    times = np.sort(rng.uniform(start_s, start_s + minutes * 60, n_requests))
    requests = []
    for i, t in enumerate(times):
        ox, oy = rng.uniform(-side_km / 2, side_km / 2, 2)
        dx, dy = rng.normal(0, 4.0, 2)
        requests.append(
            Request(f"r{i}", float(t), point(ox, oy), point(ox + dx, oy + dy), int(rng.choice([1, 1, 1, 2])))
        )
    setup = FleetSetup(vehicles, chargers, centre, ServiceClock(DAY))
    settings = load_portfolio(CONFIG).dispatch.model_copy(update={"reassign": reassign})
    simulation = Simulation(setup, tuple(requests), StraightLineRouter(30.0, 1.3), settings, policy)
    # start the fleet spread out over the square, not at its chargers
    for vehicle in simulation.vehicles.values():
        vehicle.position = point(*rng.uniform(-side_km / 2, side_km / 2, 2))
        vehicle.plugged = None
    simulation.start_s = start_s
    for vehicle in simulation.vehicles.values():
        vehicle.ready_s = start_s
        vehicle.idle_since_s = start_s
    result = simulation.run()
    figures = kpis(result)
    name = f"dispatch_scale_{n_vehicles}veh_{int(requests_per_h)}rph_{policy.value}" + (
        "" if reassign else "_no_reassign"
    )
    return [
        {"name": name, "metric": "assign_ms_p50", "value": figures["assign_ms_p50"], "unit": "ms"},
        {"name": name, "metric": "assign_ms_p95", "value": figures["assign_ms_p95"], "unit": "ms"},
        {"name": name, "metric": "assign_ms_max", "value": float(max(result.assign_ms)), "unit": "ms"},
        {"name": name, "metric": "batches", "value": float(len(result.assign_ms)), "unit": ""},
        {"name": name, "metric": "served_share", "value": figures["served_share"], "unit": "share"},
        {"name": name, "metric": "shared_ride_share", "value": figures["shared_ride_share"], "unit": "share"},
    ]


def run() -> list[dict]:
    from benchmarks.dispatch_vs_hindsight import hindsight_rows

    out_dir = Path("out/bench_dispatch")
    out_dir.mkdir(parents=True, exist_ok=True)
    minutes = float(os.environ.get("DISPATCH_BENCH_MINUTES", "20"))
    return (
        hindsight_rows(out_dir)
        + city_scale(out_dir)
        + fleet_sweep(out_dir)
        + scale_up(minutes, Policy.ILP)
        + scale_up(minutes, Policy.ILP, reassign=False)
        + scale_up(minutes, Policy.INSERTION)
    )
