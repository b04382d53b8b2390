"""The JSON payloads on the device topics, and their parser.

Topic layout under a device's prefix (``<prefix>`` is e.g. ``arao/depot_c01``):

- ``<prefix>/telemetry``: device -> all, retained, QoS 1: :class:`Telemetry`
- ``<prefix>/availability``: device -> all, retained, QoS 1: ``online`` or ``offline`` (the
  device's last will says ``offline``)
- ``<prefix>/command``: controller -> device, QoS 1: :class:`Command`
- ``<prefix>/ack``: device -> controller, QoS 1: :class:`CommandAck`

Parsing is strict: a payload over :data:`MAX_PAYLOAD_BYTES`, not JSON, not an object, with a
field of the wrong type, a non-finite number, an out-of-range value or a time without offset is
rejected with :class:`PayloadError`, which names the topic and the field.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_PAYLOAD_BYTES = 4096
ONLINE = "online"
OFFLINE = "offline"


class PayloadError(ValueError):
    def __init__(self, topic: str, field: str, reason: str):
        self.topic = topic
        self.field = field
        self.reason = reason
        super().__init__(f"rejected payload on {topic!r}: field {field!r}: {reason}")


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("time needs a UTC offset (ISO 8601)")
    return value


class Telemetry(Payload):
    """What a charger or a vehicle publishes. Power is positive into the site's bus [kW]."""

    time: dt.datetime
    power_kw: float | None = Field(None, ge=-1000, le=1000)
    energy_kwh: float | None = Field(None, ge=0)
    plugged: bool | None = None
    vehicle_id: str | None = Field(None, max_length=64)
    soc: float | None = Field(None, ge=0, le=1, description="vehicle state of charge, fraction")
    charger_id: str | None = Field(None, max_length=64, description="a vehicle: the charger it is plugged into")
    setpoint_kw: float | None = Field(None, ge=-1000, le=1000)
    lat: float | None = Field(None, ge=-90, le=90, description="a vehicle: where it is, degrees")
    lon: float | None = Field(None, ge=-180, le=180)

    _time = field_validator("time")(_aware)


class Command(Payload):
    id: str = Field(min_length=1, max_length=64)
    power_kw: float = Field(ge=-1000, le=1000)


class CommandAck(Payload):
    id: str = Field(min_length=1, max_length=64)
    applied_kw: float = Field(ge=-1000, le=1000)
    status: str = Field("ok", pattern="^(ok|rejected)$")
    reason: str | None = Field(None, max_length=200)


P = TypeVar("P", bound=Payload)


def parse(topic: str, payload: bytes, model: type[P]) -> P:
    """Validate ``payload`` as ``model``; raise :class:`PayloadError` naming topic and field."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(topic, "(payload)", f"{len(payload)} bytes, more than {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PayloadError(topic, "(payload)", f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise PayloadError(topic, "(payload)", f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate_json(payload, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(payload)"
        raise PayloadError(topic, field, first["msg"]) from None
