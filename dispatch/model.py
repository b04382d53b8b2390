"""Plain data of the dispatcher: points, requests, stops and the vehicle view of one batch.

Times inside the dispatcher are seconds [s] since the start of the service day (local
midnight); ``dispatch.clock.ServiceClock`` converts them to and from timezone-aware times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple


class Point(NamedTuple):
    """A position in degrees (WGS 84)."""

    lat: float
    lon: float


class StopKind(str, Enum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"
    CHARGER = "charger"
    DEPOT = "depot"
    SHELTER = "shelter"
    REBALANCE = "rebalance"


@dataclass(frozen=True)
class Request:
    """A rider's request: ``passengers`` travel together from ``origin`` to ``destination``."""

    request_id: str
    time_s: float
    origin: Point
    destination: Point
    passengers: int = 1


@dataclass(frozen=True)
class Stop:
    """One stop of a vehicle's route.

    For a pickup, ``latest_s`` is the latest arrival (request time plus maximum wait). For a
    drop-off, ``max_ride_s`` bounds the time from pickup to drop-off and ``picked_up_s`` is the
    actual pickup time once the rider is on board.
    """

    kind: StopKind
    point: Point
    request_id: str = ""
    passengers: int = 0
    latest_s: float = float("inf")
    max_ride_s: float = float("inf")
    picked_up_s: float | None = None
    place_id: str = ""  # charger, depot or shelter id for non-rider stops


@dataclass(frozen=True)
class VehicleView:
    """What the assignment needs to know about one vehicle at the batch time.

    ``start`` and ``start_s`` are where and when the vehicle can next change course (its
    position now, or the stop it is dwelling at). ``stops`` are the rider stops it has already
    promised. After its last stop it must still reach ``final_point`` (a shelter it is called to)
    or else the nearest charger, by ``end_s`` and with ``floor_kwh`` left in the battery.
    """

    vehicle_id: str
    seats: int
    start: Point
    start_s: float
    soc_kwh: float
    consumption_kwh_per_km: float
    floor_kwh: float
    end_s: float
    onboard_passengers: int = 0
    stops: tuple[Stop, ...] = ()
    available: bool = True
    final_point: Point | None = None


class Reason(str, Enum):
    """Why a request was not served."""

    NO_VEHICLE_IN_TIME = "no-vehicle-in-time"
    NO_SEATS = "no-seats"
    DETOUR = "detour"
    ENERGY = "energy"
    HOURS = "service-hours"
    TAKEN = "vehicles-taken"
    NO_VEHICLE = "no-vehicle-available"


REASON_TEXT = {
    Reason.NO_VEHICLE_IN_TIME: "no vehicle can reach the pickup within the maximum wait",
    Reason.NO_SEATS: "no vehicle has enough free seats",
    Reason.DETOUR: "every vehicle that could come would break a rider's detour limit",
    Reason.ENERGY: "no vehicle has the energy to finish the trip and still reach a charger with its reserve",
    Reason.HOURS: "the trip cannot end within the vehicles' service hours",
    Reason.TAKEN: "the vehicles that could serve it were given to other riders in this batch",
    Reason.NO_VEHICLE: "no vehicle is in service",
}


@dataclass(frozen=True)
class Rejection:
    request_id: str
    reason: Reason
    message: str


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one batch: new routes, who got which vehicle, who was turned down, which
    promised riders moved to another vehicle. ``routes`` holds every vehicle whose route changed."""

    routes: dict[str, tuple[Stop, ...]]
    assigned: dict[str, str]
    rejections: dict[str, Rejection]
    added_cost: float
    method: str
    trips_considered: int = 0
    solver_status: str = ""
    stats: dict[str, float] = field(default_factory=dict)
    reassigned: dict[str, str] = field(default_factory=dict)  # promised rider -> its new vehicle
