"""ECHONET Lite drivers: V2H charger-discharger (0x027E), storage battery (0x027D), residential
PV (0x0279) and low-voltage smart meter (0x0288), on a shared :class:`EchonetClient`.

Sign: ECHONET counts a battery's or a vehicle's charging as positive (EPC 0xD3); the energy
manager counts power into the site's bus as positive, so the drivers flip it. A set-point is
one SetC of the operation mode (0xDA: 0x42 charging, 0x43 discharging, 0x44 standby) with the
charging (0xEB) or discharging (0xEC) power setting in W, both acknowledged or the write fails.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from drivers.api import Ack, DeviceUnavailable, NotWritable, Quality, Reading, utc_now
from drivers.echonet.client import ECHONET_PORT, EchonetClient, EchonetError
from drivers.echonet.frame import Eoj, signed, to_unsigned, unsigned
from drivers.registry import register

log = logging.getLogger(__name__)

MODE_CHARGING, MODE_DISCHARGING, MODE_STANDBY = 0x42, 0x43, 0x44
OUT_OF_RANGE_MARGIN = 1.2

# 0x027E EPC 0xC7: vehicle connection and chargeable/dischargeable status
VEHICLE_CONNECTED = {0x40, 0x41, 0x42, 0x43, 0x44}


class EchonetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    host: str = Field(description="the node's IP address")
    port: int = Field(ECHONET_PORT, ge=1, le=65535)
    instance: int = Field(1, ge=1, le=0x7F, description="instance code of the device object")
    timeout_s: float = Field(1.0, gt=0)
    rated_power_kw: float | None = Field(None, gt=0, description="for the out-of-range check")
    invert_sign: bool = Field(False, description="a meter on a load: consumption counted positive")
    bidirectional: bool = True
    vehicle_id_epc: int | None = Field(
        0xE6, ge=0x80, le=0xFF, description="V2H: EPC with the vehicle's id (ASCII); None: not read"
    )


class EchonetDevice(abc.ABC):
    Settings = EchonetSettings
    needs = frozenset({"echonet"})
    class_code = 0
    writable = False

    @staticmethod
    def where(settings: Mapping[str, Any]) -> str:
        return f"echonet://{settings['host']}:{settings.get('port', 3610)}/{settings.get('instance', 1)}"

    def __init__(self, settings: EchonetSettings, echonet: EchonetClient):
        self.settings = settings
        self.name = settings.name
        self.client = echonet
        self.eoj = Eoj.of(self.class_code, settings.instance)
        self.bidirectional = settings.bidirectional

    async def connect(self) -> None:
        await self.client.open()

    async def close(self) -> None:  # noqa: B027 - an optional hook: most devices have nothing to close
        """The client is shared and closed by its owner."""

    async def _get(self, epcs: list[int]) -> dict[int, bytes]:
        s = self.settings
        return await self.client.get(s.host, self.eoj, epcs, s.timeout_s, s.port)

    async def read(self) -> Reading:
        try:
            reading = await self._read()
        except EchonetError as error:
            log.warning("%s: reading missing: %s", self.name, error)
            return Reading.missing(self.name, str(error))
        return _check_range(reading, self.settings.rated_power_kw)

    @abc.abstractmethod
    async def _read(self) -> Reading:
        """Read the node; may raise EchonetError."""

    async def write(self, setpoint_kw: float) -> Ack:
        raise NotWritable(self.name)

    def _good(self, **values) -> Reading:
        return Reading(device=self.name, time=utc_now(), quality=Quality.GOOD, **values)


def _check_range(reading: Reading, rated_power_kw: float | None) -> Reading:
    if reading.quality is Quality.GOOD and rated_power_kw and reading.power_kw is not None:
        if abs(reading.power_kw) > rated_power_kw * OUT_OF_RANGE_MARGIN:
            return reading.with_quality(
                Quality.OUT_OF_RANGE, f"power {reading.power_kw:.1f} kW beyond rating {rated_power_kw} kW"
            )
    if reading.soc_fraction is not None and not 0.0 <= reading.soc_fraction <= 1.0:
        return reading.with_quality(Quality.OUT_OF_RANGE, f"state of charge {reading.soc_fraction:.3f} outside 0..1")
    return reading


def _kw(watts: int | None, sign: float = 1.0) -> float | None:
    return None if watts is None else sign * watts / 1000.0


def _kwh_thousandths(edt: bytes | None) -> float | None:
    value = unsigned(edt or b"")
    return None if value is None else value / 1000.0


class _StorageLike(EchonetDevice):
    """Shared by the battery and the V2H unit: 0xD3 power, 0xD6/0xD8 energy, 0xE4 SoC, 0xDA mode."""

    writable = True
    EPCS: ClassVar[list[int]] = [0xD3, 0xD6, 0xD8, 0xE4, 0xDA, 0xEB, 0xEC]

    def _storage_values(self, values: dict[int, bytes]) -> dict:
        soc = unsigned(values.get(0xE4, b""))
        discharged, charged = _kwh_thousandths(values.get(0xD6)), _kwh_thousandths(values.get(0xD8))
        return {
            "power_kw": _kw(signed(values.get(0xD3, b"")), -1.0),
            "energy_kwh": None if discharged is None and charged is None else (discharged or 0.0) + (charged or 0.0),
            "soc_fraction": None if soc is None else soc / 100.0,
            "setpoint_kw": self._setpoint_from(values),
        }

    def _setpoint_from(self, values: dict[int, bytes]) -> float | None:
        """The set-point the unit follows: its mode with the matching power setting."""
        mode = unsigned(values.get(0xDA, b""))
        if mode == MODE_STANDBY:
            return 0.0
        if mode == MODE_CHARGING:
            return _kw(unsigned(values.get(0xEB, b"")), -1.0)
        if mode == MODE_DISCHARGING:
            return _kw(unsigned(values.get(0xEC, b"")))
        return None

    async def write(self, setpoint_kw: float) -> Ack:
        if setpoint_kw > 0 and not self.bidirectional:
            raise DeviceUnavailable(
                self.name, f"discharge of {setpoint_kw} kW refused: the unit is configured charge-only"
            )
        watts = int(round(abs(setpoint_kw) * 1000.0))
        if setpoint_kw > 0:
            values = {0xDA: bytes((MODE_DISCHARGING,)), 0xEC: to_unsigned(watts, 4)}
        elif setpoint_kw < 0:
            values = {0xDA: bytes((MODE_CHARGING,)), 0xEB: to_unsigned(watts, 4)}
        else:
            values = {0xDA: bytes((MODE_STANDBY,))}
        s = self.settings
        try:
            await asyncio.wait_for(self.client.set(s.host, self.eoj, values, s.timeout_s, s.port), s.timeout_s + 0.1)
        except EchonetError as error:
            raise DeviceUnavailable(self.name, f"set-point {setpoint_kw} kW not acknowledged: {error.reason}") from None
        except TimeoutError:
            raise DeviceUnavailable(
                self.name, f"set-point {setpoint_kw} kW not acknowledged within {s.timeout_s} s"
            ) from None
        return Ack(self.name, setpoint_kw, watts / 1000.0 * (1 if setpoint_kw >= 0 else -1))


@register("echonet_v2h")
class EchonetV2h(_StorageLike):
    """An EV charger-discharger (V2H, class 0x027E): the plugged vehicle's SoC and plug state."""

    class_code = 0x027E

    async def _read(self) -> Reading:
        epcs = self.EPCS + [0xC7] + ([self.settings.vehicle_id_epc] if self.settings.vehicle_id_epc else [])
        values = await self._get(epcs)
        status = unsigned(values.get(0xC7, b""))
        plugged = None if status is None else status in VEHICLE_CONNECTED
        vehicle = values.get(self.settings.vehicle_id_epc) if self.settings.vehicle_id_epc else None
        vehicle_id = vehicle.rstrip(b"\0").decode("ascii", errors="replace").strip() or None if vehicle else None
        fields = self._storage_values(values)
        if not plugged:
            fields["soc_fraction"] = None
        return self._good(plugged=plugged, vehicle_id=vehicle_id if plugged else None, **fields)


@register("echonet_battery")
class EchonetBattery(_StorageLike):
    """A storage battery (class 0x027D)."""

    class_code = 0x027D

    async def _read(self) -> Reading:
        return self._good(**self._storage_values(await self._get(self.EPCS)))


@register("echonet_pv")
class EchonetPv(EchonetDevice):
    """A residential PV power conditioner (0x0279): 0xE0 generation [W], 0xE1 energy [kWh/1000]."""

    class_code = 0x0279

    async def _read(self) -> Reading:
        values = await self._get([0xE0, 0xE1])
        return self._good(power_kw=_kw(unsigned(values.get(0xE0, b""))), energy_kwh=_kwh_thousandths(values.get(0xE1)))


# 0x0288 EPC 0xE1: unit of the cumulative energy counters, as a power of ten of kWh
METER_UNITS = {
    0x00: 1.0,
    0x01: 0.1,
    0x02: 0.01,
    0x03: 0.001,
    0x04: 0.0001,
    0x0A: 10.0,
    0x0B: 100.0,
    0x0C: 1000.0,
    0x0D: 10000.0,
}


@register("echonet_meter")
class EchonetSmartMeter(EchonetDevice):
    """A low-voltage smart meter (0x0288, the Route-B meter): 0xE7 power [W], import positive;
    0xE0 import energy x coefficient (0xD3) x unit (0xE1)."""

    class_code = 0x0288

    async def _read(self) -> Reading:
        values = await self._get([0xE7, 0xE0, 0xD3, 0xE1])
        sign = -1.0 if self.settings.invert_sign else 1.0
        counter = unsigned(values.get(0xE0, b""))
        coefficient = unsigned(values.get(0xD3, b"")) or 1
        unit = METER_UNITS.get(unsigned(values.get(0xE1, b"")) or 0)
        energy = None if counter is None or unit is None else counter * coefficient * unit
        return self._good(power_kw=_kw(signed(values.get(0xE7, b"")), sign), energy_kwh=energy)
