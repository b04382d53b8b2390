"""MQTT chargers and vehicles: read their retained telemetry, send acknowledged set-points.

A set-point is published on ``<prefix>/command`` with a fresh id and resent (same id: the device
applies an id once and acknowledges it again) every ``resend_interval_s`` and after every
reconnection, until the device acknowledges it on ``<prefix>/ack`` or ``timeout_s`` passes; a
broker restart therefore delays an acknowledgement but does not lose it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from drivers.api import Ack, DeviceUnavailable, NotWritable, Quality, Reading, check_reading
from drivers.mqtt.link import MqttLink
from drivers.mqtt.payload import OFFLINE, ONLINE, Command, CommandAck, PayloadError, Telemetry, parse
from drivers.registry import register

log = logging.getLogger(__name__)

POLL_S = 0.01


class MqttDeviceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    topic_prefix: str = Field(pattern=r"^[^#+]+$")
    timeout_s: float = Field(2.0, gt=0)
    stale_after_s: float = Field(30.0, gt=0, description="telemetry older than this (receive time) is stale")
    resend_interval_s: float = Field(0.5, gt=0)
    bidirectional: bool = False
    rated_power_kw: float | None = Field(
        None, gt=0, description="power and set-point beyond this (with a margin) are out-of-range"
    )


class MqttDevice:
    """Base: keeps the last valid telemetry and the availability of one device prefix."""

    Settings = MqttDeviceSettings
    needs = frozenset({"link"})
    writable = False

    @staticmethod
    def where(settings: Mapping[str, Any]) -> str:
        return f"mqtt:{settings['topic_prefix']}"

    def __init__(self, settings: MqttDeviceSettings, link: MqttLink):
        self.settings = settings
        self.name = settings.name
        self.link = link
        self.prefix = settings.topic_prefix.rstrip("/")
        self._lock = threading.Lock()
        self._telemetry: Telemetry | None = None
        self._received_at = 0.0
        self._availability: str | None = None
        self.rejected: list[PayloadError] = []

    async def connect(self) -> None:
        self.link.subscribe(f"{self.prefix}/telemetry", self._on_telemetry)
        self.link.subscribe(f"{self.prefix}/availability", self._on_availability)

    async def close(self) -> None:
        """The link is shared and closed by its owner."""

    def _reject(self, error: PayloadError) -> None:
        self.rejected.append(error)
        log.warning("%s: %s", self.name, error)

    def _on_telemetry(self, topic: str, payload: bytes) -> None:
        try:
            telemetry = parse(topic, payload, Telemetry)
        except PayloadError as error:
            self._reject(error)
            return
        with self._lock:
            self._telemetry = telemetry
            self._received_at = time.monotonic()

    def _on_availability(self, topic: str, payload: bytes) -> None:
        text = payload.decode("utf-8", errors="replace").strip()
        if text not in (ONLINE, OFFLINE):
            self._reject(PayloadError(topic, "(payload)", f"expected 'online' or 'offline', got {text[:40]!r}"))
            return
        with self._lock:
            self._availability = text

    async def read(self) -> Reading:
        deadline = time.monotonic() + self.settings.timeout_s
        while self._telemetry is None and self._availability != OFFLINE and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
        with self._lock:
            telemetry, received_at, availability = self._telemetry, self._received_at, self._availability
        if availability == OFFLINE:
            return Reading.missing(self.name, f"offline ({self.prefix}/availability)")
        if telemetry is None:
            return Reading.missing(
                self.name, f"no telemetry on {self.prefix}/telemetry within {self.settings.timeout_s} s"
            )
        reading = check_reading(self._reading(telemetry), self.settings.rated_power_kw)
        if reading.quality is Quality.OUT_OF_RANGE:
            log.warning("%s: reading on %s/telemetry out of range: %s", self.name, self.prefix, reading.error)
            return reading
        age_s = time.monotonic() - received_at
        if age_s > self.settings.stale_after_s:
            return reading.with_quality(Quality.STALE, f"telemetry {age_s:.0f} s old")
        return reading

    def _reading(self, telemetry: Telemetry) -> Reading:
        return Reading(
            device=self.name,
            time=telemetry.time,
            quality=Quality.GOOD,
            power_kw=telemetry.power_kw,
            energy_kwh=telemetry.energy_kwh,
            soc_fraction=telemetry.soc,
            plugged=telemetry.plugged,
            vehicle_id=telemetry.vehicle_id,
            setpoint_kw=telemetry.setpoint_kw,
        )

    async def write(self, setpoint_kw: float) -> Ack:
        raise NotWritable(self.name)


@register("mqtt_vehicle")
class MqttVehicle(MqttDevice):
    """A vehicle: reports its SoC and the charger it is plugged into; takes no set-point."""


@register("mqtt_charger")
class MqttCharger(MqttDevice):
    """A charger: plug state, plugged vehicle and its SoC; a signed set-point if bidirectional."""

    writable = True

    def __init__(self, settings: MqttDeviceSettings, link: MqttLink):
        super().__init__(settings, link)
        self.bidirectional = settings.bidirectional
        self._acks: dict[str, CommandAck] = {}

    async def connect(self) -> None:
        await super().connect()
        self.link.subscribe(f"{self.prefix}/ack", self._on_ack)

    def _on_ack(self, topic: str, payload: bytes) -> None:
        try:
            ack = parse(topic, payload, CommandAck)
        except PayloadError as error:
            self._reject(error)
            return
        with self._lock:
            self._acks[ack.id] = ack

    async def write(self, setpoint_kw: float) -> Ack:
        """Publish the set-point and wait for its acknowledgement (resending, same id)."""
        command = Command(id=uuid.uuid4().hex[:16], power_kw=setpoint_kw)
        body = command.model_dump_json()
        topic = f"{self.prefix}/command"
        deadline = time.monotonic() + self.settings.timeout_s
        sent_on_connection, sent_at = -1, 0.0
        while time.monotonic() < deadline:
            with self._lock:
                ack = self._acks.pop(command.id, None)
            if ack is not None:
                if ack.status != "ok":
                    raise DeviceUnavailable(self.name, f"refused set-point {setpoint_kw} kW: {ack.reason}")
                return Ack(self.name, setpoint_kw, ack.applied_kw)
            now = time.monotonic()
            resend = self.link.connections != sent_on_connection or now - sent_at >= self.settings.resend_interval_s
            if self.link.connected.is_set() and resend:
                self.link.publish(topic, body)
                sent_on_connection, sent_at = self.link.connections, now
            await asyncio.sleep(POLL_S)
        raise DeviceUnavailable(
            self.name, f"no acknowledgement on {self.prefix}/ack within {self.settings.timeout_s} s"
        )
