"""The capability API every driver speaks (docs/architecture.md, Contracts).

Small protocols instead of one base class: a :class:`Meter` reads power and energy; a
:class:`Battery` also reads state of charge and takes a power set-point; a :class:`Charger`
reports the plug state, the plugged vehicle and its state of charge, and takes a signed power
set-point when it is bidirectional.

Sign convention (generator view of the site's bus): ``power_kw`` is positive when energy flows
into the bus (PV generation, battery or vehicle discharging, grid import) and negative when
drawn from it (load, charging, export). Set-points use the same sign.

A read never raises for a device that does not answer: it returns a :class:`Reading` whose
``quality`` is ``missing`` and whose ``error`` says why. A write that cannot be delivered raises
:class:`DeviceUnavailable`; a write to a device that takes none raises :class:`NotWritable`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol, runtime_checkable


class Quality(str, Enum):
    GOOD = "good"
    STALE = "stale"  # the device answered, but with a value older than its freshness limit
    OUT_OF_RANGE = "out-of-range"  # the value is outside what the device can physically do
    MISSING = "missing"  # no answer within the timeout, an exception response, or offline


class DeviceUnavailable(Exception):
    """The device did not answer, answered with an error, or is offline. Callers decide."""

    def __init__(self, device: str, reason: str):
        self.device = device
        self.reason = reason
        super().__init__(f"device {device!r} not available: {reason}")


class NotWritable(Exception):
    """A set-point was sent to a device that takes none (a meter, a PV inverter, a vehicle)."""

    def __init__(self, device: str):
        self.device = device
        super().__init__(f"device {device!r} takes no set-point")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Reading:
    """One timestamped measurement of a device, in the units of its field names."""

    device: str
    time: dt.datetime
    quality: Quality
    power_kw: float | None = None
    energy_kwh: float | None = None  # lifetime energy counter, in the device's own direction
    soc_fraction: float | None = None  # battery, or the plugged vehicle for a charger
    plugged: bool | None = None
    vehicle_id: str | None = None
    setpoint_kw: float | None = None  # the set-point the device says it is following
    error: str | None = None

    @classmethod
    def missing(cls, device: str, error: str, time: dt.datetime | None = None) -> Reading:
        return cls(device=device, time=time or utc_now(), quality=Quality.MISSING, error=error)

    def with_quality(self, quality: Quality, error: str | None = None) -> Reading:
        return replace(self, quality=quality, error=error or self.error)

    def as_dict(self) -> dict:
        return {
            "device": self.device,
            "time": self.time.isoformat(),
            "quality": self.quality.value,
            "power_kw": self.power_kw,
            "energy_kwh": self.energy_kwh,
            "soc": self.soc_fraction,
            "plugged": self.plugged,
            "vehicle_id": self.vehicle_id,
            "setpoint_kw": self.setpoint_kw,
            "error": self.error,
        }


OUT_OF_RANGE_MARGIN = 1.2  # a power beyond 120 % of the rating is not physical
NUMERIC_FIELDS = ("power_kw", "energy_kwh", "soc_fraction", "setpoint_kw")


def check_reading(reading: Reading, rated_power_kw: float | None = None) -> Reading:
    """A good reading checked against physics: every number finite (a float register reading
    NaN or infinity), power within the rating (with a margin), state of charge within 0..1.
    A reading that fails is ``out-of-range`` and its error names the device and the field."""
    if reading.quality is not Quality.GOOD:
        return reading
    for name in NUMERIC_FIELDS:
        value = getattr(reading, name)
        if value is not None and not math.isfinite(value):
            return reading.with_quality(
                Quality.OUT_OF_RANGE, f"{reading.device}: field {name}: {value} is not a finite number"
            )
    if rated_power_kw is not None:
        for name in ("power_kw", "setpoint_kw"):
            value = getattr(reading, name)
            if value is not None and abs(value) > rated_power_kw * OUT_OF_RANGE_MARGIN:
                return reading.with_quality(
                    Quality.OUT_OF_RANGE,
                    f"{reading.device}: field {name}: {value:.1f} kW beyond the rating of {rated_power_kw} kW",
                )
    if reading.soc_fraction is not None and not 0.0 <= reading.soc_fraction <= 1.0:
        return reading.with_quality(
            Quality.OUT_OF_RANGE, f"{reading.device}: field soc: {reading.soc_fraction:.3f} outside 0..1"
        )
    return reading


@dataclass(frozen=True)
class Ack:
    """A device's confirmation that it took a set-point (possibly limited by itself)."""

    device: str
    requested_kw: float
    applied_kw: float
    time: dt.datetime = field(default_factory=utc_now)


# The connections a driver may take from its host, each shared by every driver that lists it in
# its class's ``needs`` and handed to its constructor as the keyword of that name. A driver that
# lists none opens its own (Modbus: one TCP or serial connection per device).
SHARED_CONNECTIONS: dict[str, str] = {
    "link": "the MQTT link on the controller's broker (drivers.mqtt.link.MqttLink)",
    "csms": "the OCPP central system the charge points connect to (drivers.ocpp.csms.CentralSystem)",
    "echonet": "the ECHONET Lite socket (drivers.echonet.client.EchonetClient)",
}


@runtime_checkable
class Device(Protocol):
    name: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def read(self) -> Reading: ...


@runtime_checkable
class Meter(Device, Protocol):
    """Reads power [kW] and an energy counter [kWh]."""


@runtime_checkable
class Writable(Device, Protocol):
    writable: bool

    async def write(self, setpoint_kw: float) -> Ack: ...


@runtime_checkable
class Battery(Writable, Protocol):
    """A meter that also reads state of charge and takes a power set-point [kW]."""


@runtime_checkable
class Charger(Writable, Protocol):
    """Reports plug state, the plugged vehicle and its SoC; takes a signed set-point [kW]."""

    bidirectional: bool
