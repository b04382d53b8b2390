"""Riders' messages of the live dispatcher (docs/dispatch.md, "The live service").

``rides/request`` (a rider or the feeder publishes, QoS 1)::

    {"id": "r-0001", "time": "2026-04-15T08:03:10+09:00",
     "origin": {"lat": 32.99, "lon": 130.44}, "destination": {"lat": 32.98, "lon": 130.45},
     "passengers": 1, "earliest_pickup": "2026-04-15T08:30:00+09:00"}

``earliest_pickup`` is optional: a request with it enters the batch at that time and its wait
counts from it. ``rides/<id>/status`` (the dispatcher answers, QoS 1, retained)::

    {"id": "r-0001", "status": "accepted", "time": "...", "vehicle_id": "taxi-03", "pickup_eta": "..."}
    {"id": "r-0001", "status": "rejected", "time": "...", "reason": "no-vehicle-in-time", "message": "..."}
    {"id": "r-0001", "status": "picked_up", "time": "...", "vehicle_id": "taxi-03"}
    {"id": "r-0001", "status": "dropped_off", "time": "...", "vehicle_id": "taxi-03"}
"""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatch.clock import ServiceClock
from dispatch.model import Point, Request
from dispatch.requests_io import ServiceArea
from ems.fleet import AwareDatetime, Position

REQUEST_TOPIC = "rides/request"
MAX_REQUEST_BYTES = 4096
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"  # no '/', '+' or '#': the id is a topic level


def status_topic(request_id: str) -> str:
    return f"rides/{request_id}/status"


class RideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(pattern=ID_PATTERN)
    time: AwareDatetime
    origin: Position
    destination: Position
    passengers: int = Field(1, ge=1)
    earliest_pickup: AwareDatetime | None = None


class RideStatus(str, Enum):
    RECEIVED = "received"  # stored, waiting for its batch (never published)
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PICKED_UP = "picked_up"
    DROPPED_OFF = "dropped_off"


class StatusMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    status: RideStatus
    time: AwareDatetime
    vehicle_id: str | None = None
    pickup_eta: AwareDatetime | None = None
    reason: str | None = None
    message: str | None = None


class RequestRefused(ValueError):
    """A request that cannot be taken; ``request_id`` is set when the id was readable."""

    def __init__(self, reason: str, request_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


def parse_request(payload: bytes, area: ServiceArea, max_seats: int, clock: ServiceClock) -> Request:
    """The engine's :class:`Request`, or :class:`RequestRefused` naming the field and problem."""
    if len(payload) > MAX_REQUEST_BYTES:
        raise RequestRefused(
            f"payload of {len(payload)} bytes exceeds {MAX_REQUEST_BYTES}", _readable_id(payload[:MAX_REQUEST_BYTES])
        )
    try:
        ride = RideRequest.model_validate_json(payload)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(payload)"
        raise RequestRefused(f"field {field}: {first['msg']}", _readable_id(payload)) from None
    for name, where in (("origin", ride.origin), ("destination", ride.destination)):
        if not area.contains(Point(where.lat, where.lon)):
            raise RequestRefused(
                f"field {name}: ({where.lat}, {where.lon}) is outside the service area "
                f"({area.side_km:g} km square around {area.centre.lat}, {area.centre.lon})",
                ride.id,
            )
    if ride.passengers > max_seats:
        raise RequestRefused(
            f"field passengers: {ride.passengers} is more than any vehicle's {max_seats} seats", ride.id
        )
    at = ride.earliest_pickup if ride.earliest_pickup is not None and ride.earliest_pickup > ride.time else ride.time
    if not 0 <= clock.to_s(at) < 86400:
        raise RequestRefused(
            f"field time: {at.isoformat()} is not on the service day {clock.date.isoformat()} "
            f"(is the dispatcher's clock the feeder's? --start, --speed, --epoch)",
            ride.id,
        )
    return Request(
        ride.id,
        clock.to_s(at),
        Point(ride.origin.lat, ride.origin.lon),
        Point(ride.destination.lat, ride.destination.lon),
        ride.passengers,
    )


def request_payload(request: Request, clock: ServiceClock) -> str:
    """The ``rides/request`` message of a logged request (the feeder's side)."""
    return RideRequest(
        id=request.request_id,
        time=clock.to_datetime(request.time_s),
        origin=Position(lat=request.origin.lat, lon=request.origin.lon),
        destination=Position(lat=request.destination.lat, lon=request.destination.lon),
        passengers=request.passengers,
    ).model_dump_json()


def _readable_id(payload: bytes) -> str | None:
    """The request's id if the payload is a JSON object with a well-formed ``id``."""
    import re

    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and re.match(ID_PATTERN, value) else None


def now_status(request_id: str, status: RideStatus, at: dt.datetime, **fields) -> StatusMessage:
    return StatusMessage(id=request_id, status=status, time=at, **fields)
