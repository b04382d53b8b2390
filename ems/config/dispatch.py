"""Settings of the ride-pooling dispatcher (``[dispatch]`` in a portfolio file).

Every key has a default, so a portfolio without a ``[dispatch]`` table is valid. Documented in
``docs/dispatch.md``. Units are name suffixes: ``_s`` seconds, ``_km``, ``_kmh``, ``_kwh``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DispatchSettings(BaseModel):
    """Batch assignment, rider service limits, routing and fleet-energy rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_interval_s: float = Field(30.0, gt=0, description="requests are assigned every batch")
    quote_interval_s: float | None = Field(
        None,
        gt=0,
        description="between batches, requests are answered every this many seconds by insertion into the "
        "routes as they stand (the next batch may move them); none: a request waits for the next batch",
    )
    max_wait_s: float = Field(600.0, gt=0, description="latest pickup after the request time")
    max_detour_fraction: float = Field(0.5, ge=0, description="ride may exceed the direct time by this share ...")
    max_detour_min_s: float = Field(300.0, ge=0, description="... or by this many seconds, whichever is larger")
    dwell_s: float = Field(30.0, ge=0, description="time at each pickup and drop-off (boarding, paying)")
    speed_kmh: float = Field(30.0, gt=0, description="average road speed of the straight-line router")
    detour_factor: float = Field(1.3, ge=1.0, description="road distance over straight-line distance")
    road_graph_file: str | None = Field(
        None, description="GraphML or OSM XML road graph (path relative to the config file); none: straight line"
    )
    service_start: dt.time = Field(dt.time(8, 0), description="local time the service opens")
    service_end: dt.time = Field(dt.time(18, 0), description="local time the last pickup may happen")
    vehicle_hours: Literal["service", "duties"] = Field(
        "service", description="'service': every vehicle serves service_start..service_end; 'duties': each its duties"
    )
    low_soc_fraction: float = Field(0.25, gt=0, lt=1, description="below this an idle vehicle goes to charge")
    charge_release_fraction: float = Field(0.4, gt=0, le=1, description="a charging vehicle takes riders again")
    charge_target_fraction: float = Field(0.9, gt=0, le=1, description="charging stops here")
    expected_km_per_hour: float = Field(12.0, ge=0, description="a vehicle's expected driving per service hour")
    charge_lookahead_h: float = Field(2.0, ge=0, description="energy for this many service hours is kept on board")
    idle_rebalance_s: float = Field(120.0, ge=0, description="an idle vehicle waits this long before repositioning")
    rebalance: bool = Field(True, description="idle vehicles move toward forecast demand; otherwise to the depot")
    rebalance_horizon_s: float = Field(
        1800.0,
        gt=0,
        description="a rebalancing move must save more pickup km over this much forecast demand than it drives",
    )
    rebalance_method: Literal["coverage", "transport", "stations"] = Field(
        "coverage",
        description="'coverage': greedy moves over rebalance_horizon_s; 'transport': a facility-location MIP per batch "
        "on the demand of rebalance_window_s, counting vehicles about to be free; 'stations': each idle vehicle "
        "once to a free station of the forecast demand's k-median (k = fleet size), least km in total",
    )
    station_count: Literal["fleet", "free"] = Field(
        "fleet",
        description="'stations': the k of the k-median; 'fleet': the fleet size, 'free': the vehicles free to "
        "reposition now, so the stations are the best points the free vehicles can hold",
    )
    one_vehicle_per_station: bool = Field(
        False,
        description="'stations': a station holds one vehicle; a second idle vehicle standing at it moves on "
        "to a free station like one standing nowhere (otherwise drop-offs pile idle vehicles up at a few stations)",
    )
    rebalance_window_s: float = Field(
        900.0, gt=0, description="forecast demand the transport rebalancer places vehicles for"
    )
    vehicle_rides_per_h: float = Field(
        4.0, gt=0, description="rides one vehicle can take per hour (transport rebalancer: how much demand one covers)"
    )
    wait_weight: float = Field(3.0, ge=0, description="cost of a second of rider wait relative to one of driving")
    ilp_time_limit_s: float = Field(2.0, gt=0, description="HiGHS time limit per batch; insertion is the fallback")
    max_trip_size: int = Field(3, ge=1, le=4, description="new requests one vehicle may take in one batch")
    candidates_per_vehicle: int = Field(8, ge=1, description="requests per vehicle considered for shared trips")
    vehicles_per_request: int = Field(20, ge=1, description="nearest vehicles considered for each request")
    policy: Literal["ilp", "insertion", "no-pooling"] = Field(
        "ilp", description="assignment policy of every batch, in the replay and the live service alike"
    )
    reassign: bool = Field(
        True, description="riders not yet picked up may move to another vehicle at a later batch (ilp, no-pooling)"
    )
    reoptimise: bool = Field(
        False,
        description="ilp: after each batch's ILP a local search (relocate, exchange) moves riders not yet "
        "picked up between vehicles while it lowers route time plus wait_weight x waits",
    )
    reoptimise_interval_s: float = Field(
        0.0,
        ge=0,
        description="ilp with reassign: riders not yet picked up are re-assigned (ILP, and the local "
        "search with reoptimise) at least this often, also in batches without new requests; 0: only with new requests",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DispatchSettings:
        if self.service_end <= self.service_start:
            raise ValueError("service_end must be after service_start (same day)")
        if self.quote_interval_s is not None and self.quote_interval_s >= self.batch_interval_s:
            raise ValueError(
                f"quote_interval_s ({self.quote_interval_s:g}) must be shorter than batch_interval_s "
                f"({self.batch_interval_s:g}), or left out"
            )
        if not self.low_soc_fraction < self.charge_release_fraction <= self.charge_target_fraction:
            raise ValueError("needs low_soc_fraction < charge_release_fraction <= charge_target_fraction")
        return self

    def max_ride_s(self, direct_s: float) -> float:
        """Longest in-vehicle time allowed for a ride whose direct time is ``direct_s`` [s]."""
        return direct_s + max(self.max_detour_fraction * direct_s, self.max_detour_min_s)


class _EnergyVehicle(Protocol):
    # read-only members, so frozen config models and plain dataclasses both match
    @property
    def id(self) -> str: ...
    @property
    def battery_kwh(self) -> float: ...
    @property
    def consumption_kwh_per_km(self) -> float: ...
    @property
    def soc_min_fraction(self) -> float: ...
    @property
    def reserve_kwh(self) -> float: ...


def charge_now_kwh(
    settings: DispatchSettings, battery_kwh: float, floor_kwh: float, consumption_kwh_per_km: float
) -> float:
    """Below this an idle vehicle goes to charge at once [kWh]: ``low_soc_fraction`` of the battery,
    and never less than the floor plus one hour of expected driving, so a vehicle too empty to
    take a typical trip is charging, not waiting."""
    return max(
        settings.low_soc_fraction * battery_kwh, floor_kwh + settings.expected_km_per_hour * consumption_kwh_per_km
    )


def energy_threshold_problems(
    settings: DispatchSettings, vehicles: Iterable[_EnergyVehicle]
) -> Iterable[tuple[str, str]]:
    """(key, problem) for each vehicle whose energy thresholds contradict each other.

    The floor is ``soc_min_fraction x battery_kwh + reserve_kwh``. "Charge now"
    (``dispatch.low_soc_fraction``) below the floor would leave a vehicle unable to take riders
    yet not charging; a release level (``dispatch.charge_release_fraction``) at or below the
    charge-now level would send a vehicle back to charge as soon as it is released."""
    for v in vehicles:
        floor = v.soc_min_fraction * v.battery_kwh + v.reserve_kwh
        low = settings.low_soc_fraction * v.battery_kwh
        if low < floor:
            yield (
                "dispatch.low_soc_fraction",
                f"{settings.low_soc_fraction} x battery_kwh {v.battery_kwh:g} of vehicles[id={v.id}] "
                f"= {low:.2f} kWh is below its floor soc_min_fraction x battery_kwh + reserve_kwh = {floor:.2f} kWh; "
                f"use at least {floor / v.battery_kwh:.3f} or lower the vehicle's reserve_kwh",
            )
        now = charge_now_kwh(settings, v.battery_kwh, floor, v.consumption_kwh_per_km)
        release = settings.charge_release_fraction * v.battery_kwh
        if release <= now:
            yield (
                "dispatch.charge_release_fraction",
                f"{settings.charge_release_fraction} x battery_kwh {v.battery_kwh:g} of vehicles[id={v.id}] "
                f"= {release:.2f} kWh "
                f"is not above its charge-now level {now:.2f} kWh (floor plus expected_km_per_hour of driving); "
                f"use more than {now / v.battery_kwh:.3f}",
            )
