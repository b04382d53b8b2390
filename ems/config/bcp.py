"""Settings of BCP planning (section ``[bcp]`` of a portfolio file); documented in docs/bcp.md."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BcpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step_minutes: int = Field(60, description="step of the BCP plan: 30 or 60")
    detour_factor: float = Field(1.3, ge=1.0, description="road distance = straight-line distance x this")
    speed_km_per_h: float = Field(30.0, gt=0, description="average driving speed in an outage")
    priority_weight_ratio: float = Field(
        10.0, gt=1.0, description="a kWh served at priority p is worth this many kWh at priority p+1"
    )
    rotation_hours: int = Field(
        4, ge=1, le=24, description="a vehicle's place (shelter, charger) is decided per block of this many hours"
    )
    time_limit_s: float = Field(5.0, gt=0, description="solver time limit; the best plan found by then is used")
    mip_gap: float = Field(0.0005, ge=0, lt=1, description="relative MIP gap at which the solver stops")
    secondary_time_limit_s: float = Field(
        1.0, gt=0, description="search time when the rule-based start already serves every kWh of critical load"
    )
    # the objective's small weights, in kWh-equivalent (a kWh of critical load served at the lowest priority is 1)
    up_hour_weight_kwh: float = Field(
        0.01, ge=0, description="earliness premium on served energy, falling linearly over the outage"
    )
    vehicle_call_weight_kwh: float = Field(0.05, ge=0, description="cost per vehicle taken from the ride service")
    drive_weight_kwh: float = Field(0.001, ge=0, description="cost per kWh driven (on top of the energy it takes)")
    dwell_weight_kwh: float = Field(
        0.0001, ge=0, description="cost per vehicle-hour at a shelter, so idle vehicles go back to service"
    )
    service_weight_kwh: float = Field(
        0.1, ge=0, description="value per kWh driven in the ride service by a vehicle not called"
    )
    terminal_weight_kwh: float = Field(
        0.01, ge=0, description="value per kWh left in store (batteries, vehicles) at the outage's end"
    )

    @field_validator("step_minutes")
    @classmethod
    def _step(cls, value: int) -> int:
        if value not in (30, 60):
            raise ValueError("must be 30 or 60")
        return value
