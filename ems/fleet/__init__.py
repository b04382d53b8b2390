"""The fleet contract shared by the dispatcher and the energy manager (docs/architecture.md, Contracts).

The dispatcher publishes :class:`VehicleState` and :class:`VehiclePlan`; the energy manager
publishes :class:`Reservation`. Live they travel as JSON over MQTT (``fleet/<vehicle>/state``,
``fleet/<vehicle>/plan``, ``ems/reservations``); in a simulation they are passed in-process.
The same pydantic types serve both ways: ``model_dump_json()`` / ``model_validate_json()``.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_serializer, model_validator


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must be timezone-aware (ISO 8601 with an offset)")
    return value


AwareDatetime = Annotated[dt.datetime, AfterValidator(_aware)]


class Contract(BaseModel):
    # no inf or NaN anywhere: JSON's 1e309 parses as infinity and would pass a ``ge`` bound
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class VehicleStatus(str, Enum):
    IDLE = "idle"
    ON_TRIP = "on-trip"
    TO_CHARGER = "to-charger"
    CHARGING = "charging"
    RESERVED_FOR_SHELTER = "reserved-for-shelter"


class Position(Contract):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class VehicleState(Contract):
    """What a vehicle is doing now (``fleet/<vehicle>/state``)."""

    vehicle_id: str
    time: AwareDatetime
    position: Position
    status: VehicleStatus
    soc_kwh: float = Field(ge=0)
    charger_id: str | None = None


class ChargingWindow(Contract):
    """The vehicle is expected plugged into ``charger_id`` from ``plug_in`` to ``plug_out``.

    At ``plug_out`` it needs ``departure_energy_kwh`` on board for its next duties (reserve
    included); the time away until the next window consumes ``trip_energy_kwh``.
    """

    charger_id: str
    plug_in: AwareDatetime
    plug_out: AwareDatetime
    departure_energy_kwh: float = Field(ge=0)
    trip_energy_kwh: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> ChargingWindow:
        if self.plug_out <= self.plug_in:
            raise ValueError("plug_out must be after plug_in")
        return self


class StopKind(str, Enum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"
    CHARGER = "charger"
    SHELTER = "shelter"
    DEPOT = "depot"
    REBALANCE = "rebalance"


class RouteStop(Contract):
    """One stop of the route a vehicle is driving: where, what for, and when the dispatcher
    expects it there (``eta``). ``rider_ids`` are the riders picked up or dropped off at the
    stop; ``charger_id`` names the charger at a charger or shelter stop."""

    kind: StopKind
    position: Position
    eta: AwareDatetime
    rider_ids: tuple[str, ...] = ()
    charger_id: str | None = None
    shelter_id: str | None = None


class VehiclePlan(Contract):
    """The dispatcher's expectation for one vehicle (``fleet/<vehicle>/plan``).

    ``route`` is the sequence of stops the vehicle drives next, in order. It was added with the
    live dispatcher: it is left out of the JSON when empty, so a plan without a route is the
    same message as before, and a message without it still parses.
    """

    vehicle_id: str
    issued: AwareDatetime
    windows: tuple[ChargingWindow, ...] = ()
    route: tuple[RouteStop, ...] = ()

    @model_validator(mode="after")
    def _no_overlap(self) -> VehiclePlan:
        for first, second in zip(self.windows, self.windows[1:]):
            if second.plug_in < first.plug_out:
                raise ValueError("charging windows overlap or are out of order")
        for before, after in zip(self.route, self.route[1:]):
            if after.eta < before.eta:
                raise ValueError("route stops are out of order (eta decreasing)")
        return self

    @model_serializer(mode="wrap")
    def _without_empty_additions(self, handler):
        data = handler(self)
        if not self.route:
            data.pop("route", None)
        return data


class ShelterCall(Contract):
    vehicle_id: str
    shelter_id: str
    from_time: AwareDatetime


class ChargeCall(Contract):
    """Before its shelter call, the vehicle charges at ``site_id`` from ``from_time`` until
    ``until_time`` to hold ``target_kwh`` when it leaves."""

    vehicle_id: str
    site_id: str
    from_time: AwareDatetime
    until_time: AwareDatetime
    target_kwh: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> ChargeCall:
        if self.until_time <= self.from_time:
            raise ValueError("until_time must be after from_time")
        return self


class Reservation(Contract):
    """The energy manager's word to the dispatcher (``ems/reservations``).

    ``keep_energy_kwh`` never exceeds what the vehicle holds when the reservation is issued;
    energy the plan adds first is asked for by a ``charge_calls`` entry (when and where).
    ``charge_calls`` was added later: it is left out of the JSON when empty, so a reservation
    without one is the same message as before, and a message without it still parses.
    """

    issued: AwareDatetime
    keep_energy_kwh: dict[str, float] = Field(default_factory=dict)
    shelter_calls: tuple[ShelterCall, ...] = ()
    charge_calls: tuple[ChargeCall, ...] = ()

    @model_serializer(mode="wrap")
    def _without_empty_additions(self, handler):
        data = handler(self)
        if not self.charge_calls:
            data.pop("charge_calls", None)
        return data


from ems.fleet.duties import plans_from_duties  # noqa: E402  (uses the types above)

__all__ = [
    "ChargeCall",
    "ChargingWindow",
    "Position",
    "Reservation",
    "RouteStop",
    "ShelterCall",
    "StopKind",
    "VehiclePlan",
    "VehicleState",
    "VehicleStatus",
    "plans_from_duties",
]
