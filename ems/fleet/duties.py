"""Charging windows from the configured daily duty pattern.

Until the dispatcher publishes live plans, each vehicle follows the duties in its config: away
for each duty, plugged into its home charger otherwise.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ems.config.schema import Portfolio, Vehicle


def _duty_spans(vehicle: Vehicle, first_day: dt.date, last_day: dt.date, zone: ZoneInfo):
    """(depart, return, trip_energy_kwh) for every duty starting on first_day..last_day."""
    spans = []
    day = first_day
    while day <= last_day:
        for duty in vehicle.duties:
            depart = dt.datetime.combine(day, duty.depart, tzinfo=zone)
            back = dt.datetime.combine(day, duty.return_, tzinfo=zone)
            if back <= depart:
                back += dt.timedelta(days=1)
            spans.append((depart, back, duty.distance_km * vehicle.consumption_kwh_per_km))
        day += dt.timedelta(days=1)
    return sorted(spans)


def plans_from_duties(portfolio: Portfolio, start: dt.datetime, end: dt.datetime) -> dict:
    """One :class:`VehiclePlan` per vehicle covering [start, end].

    Windows may begin before ``start`` (the vehicle is already plugged in); the last window
    before ``start`` and the first after ``end`` are kept, so the caller knows the energy and
    duration of the trips under way at either edge of the horizon.
    """
    from ems.fleet import ChargingWindow, VehiclePlan

    zone = ZoneInfo(portfolio.portfolio.timezone)
    plans = {}
    for vehicle in portfolio.vehicles:
        soc_min_kwh = vehicle.battery_kwh * vehicle.soc_min_fraction
        first_day = (start - dt.timedelta(days=2)).astimezone(zone).date()
        last_day = (end + dt.timedelta(days=1)).astimezone(zone).date()
        spans = _duty_spans(vehicle, first_day, last_day, zone)
        windows = []
        if not spans:
            windows.append(
                ChargingWindow(
                    charger_id=vehicle.home_charger,
                    plug_in=start - dt.timedelta(days=1),
                    plug_out=end + dt.timedelta(days=1),
                    departure_energy_kwh=soc_min_kwh + vehicle.reserve_kwh,
                )
            )
        for (_d0, back, _e0), (depart, _b1, trip_kwh) in zip(spans, spans[1:]):
            if depart <= back:
                continue
            windows.append(
                ChargingWindow(
                    charger_id=vehicle.home_charger,
                    plug_in=back,
                    plug_out=depart,
                    departure_energy_kwh=soc_min_kwh + vehicle.reserve_kwh + trip_kwh,
                    trip_energy_kwh=trip_kwh,
                )
            )
        # keep windows that touch the horizon, plus the last one before it
        before = [w for w in windows if w.plug_out <= start]
        inside = [w for w in windows if w.plug_out > start and w.plug_in < end]
        after = [w for w in windows if w.plug_in >= end]
        kept = before[-1:] + inside + after[:1]
        plans[vehicle.id] = VehiclePlan(vehicle_id=vehicle.id, issued=start, windows=tuple(kept))
    return plans
