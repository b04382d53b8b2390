"""What the vehicles report, as the dispatcher reads it.

A vehicle (the twin's ``SimMqttVehicle`` or a real one behind the MQTT vehicle driver) publishes
JSON on ``<prefix>/telemetry``: ``time`` (ISO 8601 with offset), ``soc`` (fraction),
``plugged``, ``charger_id`` and, if it knows it, its position ``lat``/``lon``. Other fields are
ignored; a report that does not parse is logged and dropped (the engine's model stands).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass

from dispatch.clock import ServiceClock
from dispatch.model import Point
from ems.config.schema import MqttDriver, Portfolio

log = logging.getLogger(__name__)


@dataclass
class VehicleReport:
    time_s: float
    soc: float | None
    plugged: bool | None
    charger_id: str | None
    position: Point | None
    applied: bool = False


def vehicle_topics(portfolio: Portfolio) -> dict[str, str]:
    """Telemetry topic -> vehicle id: the driver's ``topic_prefix`` for an MQTT vehicle, else the
    twin's ``<topic_root>/<id>``."""
    topics = {}
    for vehicle in portfolio.vehicles:
        driver = vehicle.driver
        prefix = driver.topic_prefix if isinstance(driver, MqttDriver) else f"{portfolio.twin.topic_root}/{vehicle.id}"
        topics[f"{prefix.rstrip('/')}/telemetry"] = vehicle.id
    return topics


def telemetry_filters(topics: dict[str, str], topic_root: str) -> list[str]:
    """The subscriptions that cover ``topics``: one ``<topic_root>/+/telemetry`` for the twin's
    vehicles, each other vehicle's own topic (an MQTT driver's ``topic_prefix``)."""
    wildcard = f"{topic_root.rstrip('/')}/+/telemetry"
    own = [
        t for t in topics if not (t.startswith(f"{topic_root.rstrip('/')}/") and t.count("/") == wildcard.count("/"))
    ]
    return ([wildcard] if len(own) < len(topics) else []) + own


def _number(data: dict, key: str, low: float, high: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ValueError(f"field {key}: {value!r} is not a number from {low} to {high}")
    return float(value)


def parse_report(topic: str, payload: bytes, day: ServiceClock) -> VehicleReport | None:
    try:
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        moment = dt.datetime.fromisoformat(str(data.get("time")))
        soc = _number(data, "soc", 0.0, 1.0)
        lat, lon = _number(data, "lat", -90, 90), _number(data, "lon", -180, 180)
        plugged = data.get("plugged")
        charger = data.get("charger_id")
        return VehicleReport(
            day.to_s(moment),
            soc,
            plugged if isinstance(plugged, bool) else None,
            charger if isinstance(charger, str) else None,
            Point(lat, lon) if lat is not None and lon is not None else None,
        )
    except (ValueError, TypeError, UnicodeDecodeError) as error:
        log.warning("vehicle telemetry on %s not used: %s", topic, error)
        return None
