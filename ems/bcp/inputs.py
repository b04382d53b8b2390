"""Assemble a :class:`BcpProblem` from a portfolio, an outage and initial states.

Pure: profiles and initial states are passed in. Travel: straight-line distance between site
coordinates x ``bcp.detour_factor``, at ``bcp.speed_km_per_h``, using each vehicle's
``consumption_kwh_per_km``. Every trip to or from a shelter runs between the shelter and its
*hub*, the nearest site that keeps the grid and has chargers; vehicles start at the site of their
home charger (else the depot), so the first trip to a shelter is costed as the longer of
"hub to shelter" and "home to shelter".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ems.bcp.depot import charging_sites, duty_profile
from ems.bcp.outage import Outage
from ems.bcp.problem import (
    BcpProblem,
    BcpSolverSettings,
    ShelterSpec,
    StationaryBatterySpec,
    VehicleSpec,
)
from ems.config.schema import Portfolio, Site
from ems.fleet.geo import great_circle_km
from ems.optimise.inputs import shelter_critical_kw, slot_series
from ems.optimise.problem import TimeGrid


def straight_line_km(a: Site, b: Site) -> float:
    """Great-circle (haversine) distance between two sites [km]."""
    return great_circle_km(a.latitude_deg, a.longitude_deg, b.latitude_deg, b.longitude_deg)


def outage_grid(outage: Outage, step_minutes: int) -> TimeGrid:
    steps = max(1, math.ceil(outage.duration_hours * 60 / step_minutes - 1e-9))
    return TimeGrid(start=pd.Timestamp(outage.start), step_minutes=step_minutes, steps=steps)


def _home_site(portfolio: Portfolio, vehicle) -> str | None:
    chargers = {c.id: c for c in portfolio.chargers}
    if vehicle.home_charger is not None:
        return chargers[vehicle.home_charger].site
    return portfolio.portfolio.depot_site


def bcp_problem_from_portfolio(
    portfolio: Portfolio,
    outage: Outage,
    profiles: Mapping[str, tuple[float, ...]],
    initial_soc_kwh: Mapping[str, float] | None = None,
    include_fleet: bool = True,
) -> BcpProblem:
    """The BCP problem of ``outage`` on ``portfolio``.

    ``initial_soc_kwh`` (vehicle or battery id -> kWh) overrides the config's
    ``initial_soc_fraction``. Shelters whose site keeps the grid need nothing and are listed in
    ``sheltered_with_grid``. Vehicles that do not allow discharging stay in the ride service; their
    charging takes its share of their home site's import limit (:mod:`ems.bcp.depot`). With
    ``include_fleet=False`` no vehicle is offered (the "without the taxi fleet" case).
    """
    settings = portfolio.bcp
    initial_soc_kwh = dict(initial_soc_kwh or {})
    zone = portfolio.portfolio.timezone
    grid = outage_grid(outage, settings.step_minutes)
    sites = {s.id: s for s in portfolio.sites}
    chargers = {c.id: c for c in portfolio.chargers}
    service_only = tuple(
        v.id for v in portfolio.vehicles if include_fleet and not v.v2g_allowed and v.home_charger is not None
    )
    hubs = charging_sites(portfolio, outage, grid, profiles, service_only)

    def road_km(a: str, b: str) -> float:
        return straight_line_km(sites[a], sites[b]) * settings.detour_factor

    shelters, with_grid = [], []
    for shelter in portfolio.shelters:
        if shelter.site not in outage.sites:
            with_grid.append(shelter.id)
            continue
        demand = shelter_critical_kw(shelter, profiles[shelter.profile], grid, zone)
        arrays = [a for a in portfolio.pv_arrays if a.site == shelter.site]
        pv = sum(
            (
                np.minimum(a.capacity_kwp * slot_series(profiles[a.profile], grid, zone), a.inverter_limit_kw or np.inf)
                for a in arrays
            ),
            np.zeros(grid.steps),
        )
        points = [chargers[p] for p in shelter.v2h_points]
        hub = min(hubs, key=lambda h: road_km(h.site, shelter.site)).site if hubs else None
        shelters.append(
            ShelterSpec(
                id=shelter.id,
                site=shelter.site,
                name=shelter.name or shelter.id,
                priority=shelter.priority,
                demand_kw=demand,
                pv_kw=pv * outage.pv_scale,
                v2h_points=len(points),
                v2h_discharge_kw=min((p.discharge_power_kw for p in points), default=0.0),
                v2h_charge_kw=min((p.charge_power_kw for p in points), default=0.0),
                v2h_efficiency=min((p.efficiency for p in points), default=1.0),
                hub_site=hub,
            )
        )

    batteries = []
    for battery in portfolio.batteries:
        served = next((s for s in shelters if s.site == battery.site), None)
        if served is None:
            continue  # a battery away from any shelter in the outage cannot reach a critical load
        batteries.append(
            StationaryBatterySpec(
                id=battery.id,
                shelter_id=served.id,
                soc_min_kwh=battery.capacity_kwh * battery.soc_min_fraction,
                soc_max_kwh=battery.capacity_kwh * battery.soc_max_fraction,
                initial_soc_kwh=initial_soc_kwh.get(battery.id, battery.capacity_kwh * battery.initial_soc_fraction),
                charge_max_kw=battery.charge_power_kw,
                discharge_max_kw=battery.discharge_power_kw,
                charge_efficiency=battery.charge_efficiency,
                discharge_efficiency=battery.discharge_efficiency,
            )
        )

    vehicles, excluded = [], {}
    for vehicle in portfolio.vehicles:
        home = _home_site(portfolio, vehicle)
        if not include_fleet:
            excluded[vehicle.id] = "fleet left out of this plan"
            continue
        if not vehicle.v2g_allowed:
            excluded[vehicle.id] = "does not allow discharging (v2g_allowed = false)"
            continue
        if home is None:
            excluded[vehicle.id] = "no home charger and no depot site: start position unknown"
            continue
        to_km, back_km = {}, {}
        for s in shelters:
            hub = s.hub_site or home
            to_km[s.id] = max(road_km(hub, s.site), road_km(home, s.site))
            back_km[s.id] = road_km(s.site, hub)
        per_km = vehicle.consumption_kwh_per_km
        service_kwh, service_away = duty_profile(vehicle, grid, zone)
        vehicles.append(
            VehicleSpec(
                id=vehicle.id,
                soc_min_kwh=vehicle.battery_kwh * vehicle.soc_min_fraction,
                soc_max_kwh=vehicle.battery_kwh * vehicle.soc_max_fraction,
                initial_soc_kwh=initial_soc_kwh.get(vehicle.id, vehicle.battery_kwh * vehicle.initial_soc_fraction),
                trip_to_kwh={s: km * per_km for s, km in to_km.items()},
                trip_back_kwh={s: km * per_km for s, km in back_km.items()},
                trip_to_h={s: km / settings.speed_km_per_h for s, km in to_km.items()},
                trip_back_h={s: km / settings.speed_km_per_h for s, km in back_km.items()},
                trip_to_km=to_km,
                trip_back_km=back_km,
                service_kwh=service_kwh,
                service_away=service_away,
            )
        )

    return BcpProblem(
        start=grid.start,
        step_minutes=grid.step_minutes,
        steps=grid.steps,
        shelters=tuple(shelters),
        batteries=tuple(batteries),
        vehicles=tuple(vehicles),
        charging_sites=hubs,
        settings=BcpSolverSettings(**{key: getattr(settings, key) for key in BcpSolverSettings.__dataclass_fields__}),
        excluded_vehicles=excluded,
        sheltered_with_grid=tuple(with_grid),
        rotation_steps=max(1, settings.rotation_hours * 60 // settings.step_minutes),
    )
