"""Replay a request log through the dispatcher on a simulated clock and measure the service.

The replay drives the stepping engine (``dispatch.engine``) batch by batch: every batch
interval it hands the engine the requests that arrived since the last batch. The run ends when
every request is either rejected or dropped off. The live service drives the same engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dispatch.assign import Policy
from dispatch.engine import Engine, Leg, RiderRecord, SimVehicle
from dispatch.fleet import DemandForecast, FleetSetup, floor_kwh
from dispatch.model import Request
from dispatch.router import Router
from ems.config.dispatch import DispatchSettings
from ems.fleet import Reservation, VehiclePlan, VehicleState

__all__ = ["Leg", "RiderRecord", "SimVehicle", "Simulation", "SimulationResult", "kpis"]


@dataclass
class SimulationResult:
    riders: dict[str, RiderRecord]
    vehicles: dict[str, SimVehicle]
    assign_ms: list[float]
    plans: dict[str, VehiclePlan]
    states: dict[str, VehicleState]
    end_s: float
    policy: str
    reassignments: int = 0
    floors_kwh: dict[str, float] = field(default_factory=dict)


class Simulation(Engine):
    """One replay; ``run()`` returns the :class:`SimulationResult`."""

    def __init__(
        self,
        setup: FleetSetup,
        requests: tuple[Request, ...],
        router: Router,
        settings: DispatchSettings,
        policy: Policy | None = None,
        forecast: DemandForecast | None = None,
        reservation: Reservation | None = None,
    ):
        ordered = sorted(requests, key=lambda r: r.time_s)
        start_s = min([s for v in setup.vehicles for s, _ in v.shifts] + [r.time_s for r in ordered[:1]])
        start_s = math.floor(start_s / settings.batch_interval_s) * settings.batch_interval_s
        super().__init__(setup, router, settings, start_s, policy, forecast, reservation)
        self.requests = ordered
        self.add_requests(ordered)

    def run(self) -> SimulationResult:
        step = self.settings.batch_interval_s
        now = self.start_s
        next_request = 0
        while True:
            arrived = []
            while next_request < len(self.requests) and self.requests[next_request].time_s <= now:
                arrived.append(self.requests[next_request])
                next_request += 1
            self.step(now, arrived)
            if now == self.start_s or not self.plans:
                self.plans = self._plans(now)
            self._record(now)
            if next_request >= len(self.requests) and not any(v.stops for v in self.vehicles.values()):
                break
            quote = self.settings.quote_interval_s
            if quote is not None:  # the requests before the next batch, answered at the quote after each arrives
                while next_request < len(self.requests) and self.requests[next_request].time_s < now + step:
                    at = math.ceil(self.requests[next_request].time_s / quote) * quote
                    if at >= now + step:
                        break
                    quoted = []
                    while next_request < len(self.requests) and self.requests[next_request].time_s <= at:
                        quoted.append(self.requests[next_request])
                        next_request += 1
                    self.quote(max(at, now), quoted)
            now += step
        return SimulationResult(
            self.riders,
            self.vehicles,
            self.assign_ms,
            self.plans,
            self._states(now),
            now,
            self.policy.value,
            self.reassignments,
            {v: floor_kwh(x.spec, self.reservation) for v, x in self.vehicles.items()},
        )


def kpis(result: SimulationResult) -> dict[str, float]:
    """The service and fleet figures of a replay (see docs/dispatch.md for definitions)."""
    riders = list(result.riders.values())
    served = [r for r in riders if r.dropoff_s is not None]
    # (asked, picked up, dropped off, direct) seconds of each ride; a dropped-off rider was picked up
    rides = [
        (r.request.time_s, r.pickup_s, r.dropoff_s, r.direct_s)
        for r in served
        if r.pickup_s is not None and r.dropoff_s is not None
    ]
    waits = np.array([pickup - asked for asked, pickup, _, _ in rides]) if rides else np.array([np.nan])
    detours = [(dropoff - pickup) / direct for _, pickup, dropoff, direct in rides if direct > 0]
    vehicles = list(result.vehicles.values())
    km = sum(v.km for v in vehicles)
    empty_km = sum(v.empty_km for v in vehicles)
    occupied_km = km - empty_km
    assign = np.array(result.assign_ms) if result.assign_ms else np.array([0.0])
    purposes = ("with_riders", "to_pickup", "rebalancing", "to_charger", "to_depot", "to_shelter")
    by_purpose = {f"km_{p}": sum(v.km_by_purpose.get(p, 0.0) for v in vehicles) for p in purposes}
    return {
        "requests": len(riders),
        "served": len(served),
        "served_share": len(served) / len(riders) if riders else 0.0,
        "mean_wait_s": float(np.mean(waits)),
        "p95_wait_s": float(np.percentile(waits, 95)),
        "mean_detour_ratio": float(np.mean(detours)) if detours else float("nan"),
        "vehicle_km": km,
        "empty_km_share": empty_km / km if km > 0 else 0.0,
        "shared_ride_share": sum(r.shared for r in served) / len(served) if served else 0.0,
        "mean_occupancy": sum(v.passenger_km for v in vehicles) / occupied_km if occupied_km > 0 else 0.0,
        "energy_kwh": sum(v.energy_kwh for v in vehicles),
        "charging_stops": sum(v.charging_stops for v in vehicles),
        "reassigned_riders": result.reassignments,
        **by_purpose,
        "vehicles_below_floor": sum(v.min_soc_kwh < floor - 1e-9 for v, floor in _floors(result)),
        "min_soc_above_floor_kwh": min((v.min_soc_kwh - floor for v, floor in _floors(result)), default=float("nan")),
        "idle_low_vehicle_h": sum(v.idle_low_s for v in vehicles) / 3600.0,
        "assign_ms_p50": float(np.percentile(assign, 50)),
        "assign_ms_p95": float(np.percentile(assign, 95)),
        "batches": len(result.assign_ms),
    }


def _floors(result: SimulationResult):
    """(vehicle, its floor) of the vehicles that drove at all."""
    return [(v, result.floors_kwh.get(vid, 0.0)) for vid, v in result.vehicles.items() if v.min_soc_kwh < float("inf")]
