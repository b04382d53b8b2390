"""What every Modbus driver shares: settings, the connection, a time-bounded read, quality."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from drivers.api import DeviceUnavailable, NotWritable, Quality, Reading, check_reading, utc_now
from drivers.modbus.connection import ModbusConnection, ModbusEndpoint

log = logging.getLogger(__name__)


class ModbusSettings(ModbusEndpoint):
    name: str = Field(description="device id used in readings, logs and errors")
    rated_power_kw: float | None = Field(None, gt=0, description="for the out-of-range check")
    invert_sign: bool = Field(False, description="the device counts consumption as positive (a load meter)")


class ModbusDevice(abc.ABC):
    """Base of the Modbus drivers: subclasses implement ``_read()`` and, if writable, ``_write()``."""

    Settings: type[ModbusSettings] = ModbusSettings

    @staticmethod
    def where(settings: Mapping[str, Any]) -> str:
        s = settings
        if s.get("transport") == "rtu":
            return f"modbus-rtu:{s['serial_port']}/{s.get('unit_id', 1)}"
        if s.get("tls"):
            return f"modbus+tls://{s['host']}:{s['port']}/{s.get('unit_id', 1)}"
        return f"modbus://{s['host']}:{s['port']}/{s.get('unit_id', 1)}"

    writable = False

    def __init__(self, settings: ModbusSettings):
        self.settings = settings
        self.name = settings.name
        self.connection = ModbusConnection(settings.name, settings)

    async def connect(self) -> None:  # noqa: B027 - an optional hook, overridden where a device needs it
        """Nothing to do up front: the connection is opened (and re-opened) on demand."""

    async def close(self) -> None:
        await self.connection.close()

    async def read(self) -> Reading:
        """One reading, within the device's timeout; never raises for a silent device."""
        try:
            reading = await asyncio.wait_for(self._read(), self.settings.timeout_s)
        except TimeoutError:
            await self.connection.close()
            reading = Reading.missing(self.name, f"no answer within {self.settings.timeout_s} s")
        except DeviceUnavailable as error:
            reading = Reading.missing(self.name, error.reason)
        if reading.quality is Quality.MISSING:
            log.warning("%s: reading missing: %s", self.name, reading.error)
        return check_range(reading, self.settings.rated_power_kw)

    async def write(self, setpoint_kw: float):
        if not self.writable:
            raise NotWritable(self.name)
        try:
            return await asyncio.wait_for(self._write(setpoint_kw), self.settings.timeout_s)
        except TimeoutError:
            await self.connection.close()
            raise DeviceUnavailable(self.name, f"set-point not confirmed within {self.settings.timeout_s} s") from None

    @abc.abstractmethod
    async def _read(self) -> Reading:
        """Read the device; may raise DeviceUnavailable."""

    async def _write(self, setpoint_kw: float):
        raise NotWritable(self.name)

    def _signed(self, power_kw: float | None) -> float | None:
        if power_kw is None:
            return None
        return -power_kw if self.settings.invert_sign else power_kw

    def _good(self, **values) -> Reading:
        return Reading(device=self.name, time=utc_now(), quality=Quality.GOOD, **values)


def check_range(reading: Reading, rated_power_kw: float | None) -> Reading:
    """See :func:`drivers.api.check_reading` (finite, within the rating, SoC within 0..1)."""
    return check_reading(reading, rated_power_kw)
