"""Grid-kept charging sites and the ride service during an outage (inputs of the BCP problem).

A charging site's chargers share its grid connection with the site's own load:

    headroom_kw[c,t] = import_limit_kw + pv_kw[t] * pv_scale - load_kw[t] - service_only_kw[t]   (>= 0)

where ``service_only_kw`` is the charging of taxis homed there that stay in the ride service and
cannot discharge (``v2g_allowed = false``): they recharge, while off duty, what their duties drive
(their duty energy over the outage spread evenly over their hours off duty, at most their
charger's power). Each of them also keeps its own charger. Taxis that can discharge are
planned by the MILP, whether called to a shelter or left in service.

Duties are the config's daily shifts (``[[vehicles]].duties``): per step, the share of the step a
vehicle is on the road and the energy it drives (a shift's energy spread evenly over the shift).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ems.bcp.outage import Outage
from ems.bcp.problem import ChargingSiteSpec
from ems.config.schema import Portfolio, Vehicle
from ems.optimise.inputs import slot_series
from ems.optimise.problem import TimeGrid


def duty_profile(vehicle: Vehicle, grid: TimeGrid, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """(energy driven [kWh], share of the step on the road) per step of ``grid`` from the duties."""
    zone = ZoneInfo(timezone)
    step = dt.timedelta(minutes=grid.step_minutes)
    starts = [grid.start.to_pydatetime() + t * step for t in range(grid.steps)]
    energy, away = np.zeros(grid.steps), np.zeros(grid.steps)
    first = (starts[0] - dt.timedelta(days=1)).astimezone(zone).date()
    last = (starts[-1] + step).astimezone(zone).date()
    for day in pd.date_range(first, last, freq="D").date:
        for duty in vehicle.duties:
            depart = dt.datetime.combine(day, duty.depart, tzinfo=zone)
            back = dt.datetime.combine(day, duty.return_, tzinfo=zone)
            back += dt.timedelta(days=1) if back <= depart else dt.timedelta(0)
            kwh_per_h = duty.distance_km * vehicle.consumption_kwh_per_km / ((back - depart) / dt.timedelta(hours=1))
            for t, start in enumerate(starts):
                overlap_h = (min(back, start + step) - max(depart, start)) / dt.timedelta(hours=1)
                if overlap_h > 0:
                    energy[t] += kwh_per_h * overlap_h
                    away[t] += overlap_h / (grid.step_minutes / 60)
    return energy, np.minimum(away, 1.0)


def _site_kw(portfolio: Portfolio, site: str, grid: TimeGrid, profiles: Mapping, pv_scale: float) -> np.ndarray:
    """PV minus load at ``site`` per step [kW]."""
    zone = portfolio.portfolio.timezone
    net = np.zeros(grid.steps)
    for array in (a for a in portfolio.pv_arrays if a.site == site):
        net += (
            np.minimum(
                array.capacity_kwp * slot_series(profiles[array.profile], grid, zone), array.inverter_limit_kw or np.inf
            )
            * pv_scale
        )
    for load in (x for x in portfolio.loads if x.site == site):
        net -= load.peak_kw * slot_series(profiles[load.profile], grid, zone)
    return net


def service_only_charging_kw(portfolio: Portfolio, vehicle: Vehicle, grid: TimeGrid) -> np.ndarray:
    """Charging of a taxi that stays in service: its duty energy, spread over its hours off duty."""
    if vehicle.home_charger is None:
        raise ValueError(f"vehicle {vehicle.id!r} has no home_charger to charge at while it stays in service")
    charger = next(c for c in portfolio.chargers if c.id == vehicle.home_charger)
    energy, away = duty_profile(vehicle, grid, portfolio.portfolio.timezone)
    parked_h = (1.0 - away) * grid.step_minutes / 60
    if energy.sum() <= 0 or parked_h.sum() <= 0:
        return np.zeros(grid.steps)
    kw = energy.sum() / charger.efficiency / parked_h.sum()
    return np.minimum(kw, charger.charge_power_kw) * (1.0 - away)


def charging_sites(
    portfolio: Portfolio,
    outage: Outage,
    grid: TimeGrid | None = None,
    profiles: Mapping | None = None,
    stay_in_service: tuple[str, ...] = (),
) -> tuple[ChargingSiteSpec, ...]:
    """Sites that keep the grid and have chargers: where vehicles recharge during the outage.

    With ``grid`` and ``profiles``, each site's import headroom per step (module docstring);
    ``stay_in_service`` are the ids of taxis that stay in the ride service and cannot discharge.
    """
    vehicles = {v.id: v for v in portfolio.vehicles}
    chargers_by_id = {c.id: c for c in portfolio.chargers}
    specs = []
    for site in portfolio.sites:
        chargers = [c for c in portfolio.chargers if c.site == site.id]
        if site.id in outage.sites or not chargers:
            continue
        headroom, kept = None, 0
        if grid is not None and profiles is not None:
            limit_kw = sum(g.import_limit_kw for g in portfolio.grid_connections if g.site == site.id)
            headroom = limit_kw + _site_kw(portfolio, site.id, grid, profiles, outage.pv_scale)
            for vehicle_id in stay_in_service:
                vehicle = vehicles[vehicle_id]
                if vehicle.home_charger is not None and chargers_by_id[vehicle.home_charger].site == site.id:
                    headroom = headroom - service_only_charging_kw(portfolio, vehicle, grid)
                    kept += 1
            headroom = np.maximum(headroom, 0.0)
        specs.append(
            ChargingSiteSpec(
                site=site.id,
                chargers=max(0, len(chargers) - kept),
                charge_kw=min(c.charge_power_kw for c in chargers),
                efficiency=min(c.efficiency for c in chargers),
                import_headroom_kw=headroom,
            )
        )
    return tuple(specs)
