"""Devices that are not SunSpec: a register map declared as data (a ``[register_maps]`` table).

A map names its points by what they mean; ``value = raw * scale`` in the point's unit:

- ``power_kw`` (required): power, positive into the site's bus (``invert_sign`` flips it);
- ``energy_kwh``: an energy counter;
- ``soc_percent``: state of charge [%];
- ``setpoint_kw``: a writable power set-point, same sign as ``power_kw``.

A device whose map has a writable ``setpoint_kw`` is writable; any other is read-only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.api import Ack, DeviceUnavailable, Reading
from drivers.modbus.base import ModbusDevice, ModbusSettings
from drivers.modbus.connection import WIDTH, decode, encode
from drivers.registry import register

POINT_NAMES = ("power_kw", "energy_kwh", "soc_percent", "setpoint_kw")


class VendorPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: int = Field(ge=0, le=65535)
    type: Literal["int16", "uint16", "int32", "uint32", "float32"] = "int16"
    scale: float = 1.0
    writable: bool = False
    table: Literal["holding", "input"] = "holding"


class VendorSettings(ModbusSettings):
    map_name: str = "vendor"
    points: dict[str, VendorPoint]

    @field_validator("points")
    @classmethod
    def _known_names(cls, points: dict[str, VendorPoint]) -> dict[str, VendorPoint]:
        unknown = sorted(set(points) - set(POINT_NAMES))
        if unknown:
            raise ValueError(f"unknown point names {unknown}; a register map may name {list(POINT_NAMES)}")
        if "power_kw" not in points:
            raise ValueError("a register map needs a 'power_kw' point")
        setpoint = points.get("setpoint_kw")
        if setpoint is not None and (not setpoint.writable or setpoint.table != "holding"):
            raise ValueError("'setpoint_kw' must be a writable holding register")
        return points


@register("modbus_vendor")
class VendorMapDevice(ModbusDevice):
    Settings = VendorSettings

    def __init__(self, settings: VendorSettings):
        super().__init__(settings)
        self.points = settings.points
        self.writable = "setpoint_kw" in settings.points

    async def _value(self, name: str) -> float | None:
        point = self.points.get(name)
        if point is None:
            return None
        words = await self.connection.read_registers(point.address, WIDTH[point.type], point.table)
        raw = decode(words, point.type, self.settings.word_order)
        return None if raw is None else raw * point.scale

    async def _read(self) -> Reading:
        soc_percent = await self._value("soc_percent")
        return self._good(
            power_kw=self._signed(await self._value("power_kw")),
            energy_kwh=await self._value("energy_kwh"),
            soc_fraction=None if soc_percent is None else soc_percent / 100.0,
            setpoint_kw=self._signed(await self._value("setpoint_kw")),
        )

    async def _write(self, setpoint_kw: float) -> Ack:
        point = self.points["setpoint_kw"]
        device_value = -setpoint_kw if self.settings.invert_sign else setpoint_kw
        try:
            words = encode(device_value / point.scale, point.type, self.settings.word_order)
        except ValueError as error:
            raise DeviceUnavailable(
                self.name, f"set-point {setpoint_kw} kW: {error} (register {point.address})"
            ) from None
        await self.connection.write_registers(point.address, words)
        return Ack(self.name, setpoint_kw, setpoint_kw)
