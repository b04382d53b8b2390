"""Simulated chargers and vehicles on a real MQTT broker, one client (and last will) each.

A charger takes commands on ``<prefix>/command``, applies each command id once, and
acknowledges it on ``<prefix>/ack`` (again, if the controller resends the same id). Telemetry is
published retained, so a reader that subscribes later sees the latest state at once.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from drivers.mqtt.link import BrokerSettings, MqttLink, Will
from drivers.mqtt.payload import OFFLINE, ONLINE, Command, CommandAck, PayloadError, Telemetry, parse
from drivers.sim.physics import SimCharger, SimEv

log = logging.getLogger(__name__)

REMEMBERED_COMMANDS = 64


class SimMqttDevice(abc.ABC):
    def __init__(
        self, name: str, prefix: str, broker: BrokerSettings, clock: Callable[[], dt.datetime], lock: threading.Lock
    ):
        self.name = name
        self.prefix = prefix.rstrip("/")
        self.clock = clock
        self.lock = lock  # guards the physics shared with the twin's stepping loop
        availability = f"{self.prefix}/availability"
        self.link = MqttLink(
            broker,
            will=Will(topic=availability, payload=OFFLINE),
            birth=Will(topic=availability, payload=ONLINE),
        )
        self.rejected: list[PayloadError] = []

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        self.link.stop()

    @abc.abstractmethod
    def telemetry(self) -> Telemetry:
        """The device's state now, as published."""

    def publish(self) -> None:
        if self.link.connected.is_set():
            with self.lock:
                body = self.telemetry().model_dump_json(exclude_none=True)
            self.link.publish(f"{self.prefix}/telemetry", body, retain=True)


class SimMqttVehicle(SimMqttDevice):
    def __init__(self, vehicle: SimEv, prefix: str, broker: BrokerSettings, clock, lock):
        super().__init__(vehicle.name, prefix, broker, clock, lock)
        self.vehicle = vehicle

    def telemetry(self) -> Telemetry:
        v = self.vehicle
        lat, lon = v.position if v.position is not None else (None, None)
        return Telemetry(
            time=self.clock(),
            soc=round(v.soc_fraction, 4),
            plugged=v.charger_id is not None,
            charger_id=v.charger_id,
            lat=lat,
            lon=lon,
        )


class SimMqttCharger(SimMqttDevice):
    def __init__(self, charger: SimCharger, prefix: str, broker: BrokerSettings, clock, lock):
        super().__init__(charger.name, prefix, broker, clock, lock)
        self.charger = charger
        self._applied: OrderedDict[str, float] = OrderedDict()
        self.commands_applied = 0
        self.link.subscribe(f"{self.prefix}/command", self._on_command)

    def telemetry(self) -> Telemetry:
        c = self.charger
        v = c.vehicle
        return Telemetry(
            time=self.clock(),
            power_kw=round(c.power_kw, 4),
            energy_kwh=round(c.energy.export_kwh + c.energy.import_kwh, 4),
            plugged=v is not None,
            vehicle_id=v.name if v else None,
            soc=round(v.soc_fraction, 4) if v else None,
            setpoint_kw=c.setpoint_kw,
        )

    def _on_command(self, topic: str, payload: bytes) -> None:
        try:
            command = parse(topic, payload, Command)
        except PayloadError as error:
            self.rejected.append(error)
            log.warning("%s: %s", self.name, error)
            return
        applied = self._applied.get(command.id)
        if applied is None:
            with self.lock:
                applied = self.charger.apply_setpoint(command.power_kw)
            self.commands_applied += 1
            self._applied[command.id] = applied
            while len(self._applied) > REMEMBERED_COMMANDS:
                self._applied.popitem(last=False)
            log.info("%s: set-point %.2f kW, applied %.2f kW", self.name, command.power_kw, applied)
        ack = CommandAck(id=command.id, applied_kw=round(applied, 4))
        self.link.publish(f"{self.prefix}/ack", ack.model_dump_json())
        self.publish()
