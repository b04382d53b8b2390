"""Settings of the ride-pooling dispatcher (``[dispatch]`` in a portfolio file).

Every key has a default, so a portfolio without a ``[dispatch]`` table is valid. Documented in
``docs/dispatch.md``. Units are name suffixes: ``_s`` seconds, ``_km``, ``_kmh``, ``_kwh``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DispatchSettings(BaseModel):
    """Batch assignment, rider service limits, routing and fleet-energy rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_interval_s: float = Field(30.0, gt=0, description="requests are assigned every batch")
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
        1800.0, gt=0, description="a rebalancing move must save more pickup km over this much forecast demand than it drives"
    )
    wait_weight: float = Field(3.0, ge=0, description="cost of a second of rider wait relative to one of driving")
    ilp_time_limit_s: float = Field(2.0, gt=0, description="HiGHS time limit per batch; insertion is the fallback")
    max_trip_size: int = Field(3, ge=1, le=4, description="new requests one vehicle may take in one batch")
    candidates_per_vehicle: int = Field(8, ge=1, description="requests per vehicle considered for shared trips")
    vehicles_per_request: int = Field(20, ge=1, description="nearest vehicles considered for each request")
    reassign: bool = Field(
        True, description="riders not yet picked up may move to another vehicle at a later batch (ilp, no-pooling)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> "DispatchSettings":
        if self.service_end <= self.service_start:
            raise ValueError("service_end must be after service_start (same day)")
        if not self.low_soc_fraction < self.charge_release_fraction <= self.charge_target_fraction:
            raise ValueError("needs low_soc_fraction < charge_release_fraction <= charge_target_fraction")
        return self

    def max_ride_s(self, direct_s: float) -> float:
        """Longest in-vehicle time allowed for a ride whose direct time is ``direct_s`` [s]."""
        return direct_s + max(self.max_detour_fraction * direct_s, self.max_detour_min_s)
