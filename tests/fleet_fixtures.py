"""A vehicle's fleet state as the dispatcher publishes it, for the fleet bus and input-bound tests."""

from __future__ import annotations

import datetime as dt

from ems.fleet import Position, VehicleState, VehicleStatus

NOW = dt.datetime(2026, 4, 15, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def vehicle_state(vehicle="taxi-01", soc=20.0, at=NOW) -> VehicleState:
    return VehicleState(
        vehicle_id=vehicle,
        time=at,
        position=Position(lat=32.99, lon=130.44),
        status=VehicleStatus.CHARGING,
        soc_kwh=soc,
        charger_id="depot_c01",
    )
