"""SunSpec drivers: a PV inverter (models 1 + 103), a meter (1 + 203) and a battery
(1 + 103 + 124 storage controls). The models are found by scanning, once, from 'SunS'.

Battery set-points (model 124, documented in docs/drivers.md): a discharge of P kW sets
``OutWRte = P / WChaMax`` [%] and ``StorCtl_Mod = 2``; a charge sets ``InWRte`` and
``StorCtl_Mod = 1``; zero sets both rates to 0 with ``StorCtl_Mod = 3``.
"""

from __future__ import annotations

from drivers.api import Ack, DeviceUnavailable, Reading
from drivers.modbus import sunspec
from drivers.modbus.base import ModbusDevice, ModbusSettings
from drivers.modbus.connection import encode
from drivers.registry import register


class SunSpecDevice(ModbusDevice):
    """Scans once for its models, then reads the blocks it needs."""

    required_models: tuple[int, ...] = (1,)

    def __init__(self, settings: ModbusSettings):
        super().__init__(settings)
        self.model_addresses: dict[int, int] | None = None

    async def models(self) -> dict[int, int]:
        if self.model_addresses is None:
            found = await sunspec.scan(self.connection)
            missing = [m for m in self.required_models if m not in found]
            if missing:
                raise DeviceUnavailable(self.name, f"SunSpec models {missing} not found (device has {sorted(found)})")
            self.model_addresses = found
        return self.model_addresses

    async def block(self, model_id: int) -> list[int]:
        address = (await self.models())[model_id]
        try:
            return await sunspec.read_model(self.connection, address, sunspec.MODELS[model_id])
        except DeviceUnavailable as error:
            if getattr(error, "code", None) is None and "SunSpec model" in error.reason:
                self.model_addresses = None  # the device's layout changed (new firmware): scan again
            raise

    async def nameplate(self) -> dict[str, str | None]:
        block = await self.block(1)
        return {p: sunspec.decode_point(block, sunspec.COMMON, p) for p in ("Mn", "Md", "SN", "Vr")}


def _kw(value: float | None) -> float | None:
    return None if value is None else value / 1000.0


@register("sunspec_inverter")
class SunSpecInverter(SunSpecDevice):
    """A PV inverter: AC power out is positive (into the bus); energy is its lifetime yield."""

    required_models = (1, 103)

    async def _read(self) -> Reading:
        block = await self.block(103)
        model = sunspec.INVERTER_THREE_PHASE
        return self._good(
            power_kw=self._signed(_kw(sunspec.decode_point(block, model, "W"))),
            energy_kwh=_kw(sunspec.decode_point(block, model, "WH")),
        )


@register("sunspec_meter")
class SunSpecMeter(SunSpecDevice):
    """A meter (model 203): import is positive; ``invert_sign`` for a meter on a load."""

    required_models = (1, 203)

    async def _read(self) -> Reading:
        block = await self.block(203)
        model = sunspec.METER_THREE_PHASE_WYE
        return self._good(
            power_kw=self._signed(_kw(sunspec.decode_point(block, model, "W"))),
            energy_kwh=_kw(sunspec.decode_point(block, model, "TotWhImp")),
        )


@register("sunspec_battery")
class SunSpecBattery(SunSpecDevice):
    """A battery inverter: power from model 103, SoC and set-points through model 124."""

    required_models = (1, 103, 124)
    writable = True

    async def _read(self) -> Reading:
        inverter = await self.block(103)
        storage = await self.block(124)
        model = sunspec.STORAGE_CONTROLS
        soc_percent = sunspec.decode_point(storage, model, "ChaState")
        return self._good(
            power_kw=_kw(sunspec.decode_point(inverter, sunspec.INVERTER_THREE_PHASE, "W")),
            energy_kwh=_kw(sunspec.decode_point(inverter, sunspec.INVERTER_THREE_PHASE, "WH")),
            soc_fraction=None if soc_percent is None else soc_percent / 100.0,
            setpoint_kw=_setpoint_from_controls(storage),
        )

    async def _write(self, setpoint_kw: float) -> Ack:
        storage = await self.block(124)
        model = sunspec.STORAGE_CONTROLS
        wcha_max_w = sunspec.decode_point(storage, model, "WChaMax")
        rate_sf = sunspec.decode_point(storage, model, "InOutWRte_SF")
        if not wcha_max_w or rate_sf is None:
            raise DeviceUnavailable(self.name, "model 124 lacks WChaMax or InOutWRte_SF; cannot scale a set-point")
        percent = min(100.0, abs(setpoint_kw) * 1000.0 / wcha_max_w * 100.0)
        raw = encode(percent / 10.0**rate_sf, "int16")[0]
        out_rate, in_rate, mode = 0, 0, sunspec.STORCTL_CHARGE | sunspec.STORCTL_DISCHARGE
        if setpoint_kw > 0:
            out_rate, mode = raw, sunspec.STORCTL_DISCHARGE
        elif setpoint_kw < 0:
            in_rate, mode = raw, sunspec.STORCTL_CHARGE
        base = (await self.models())[124]
        await self.connection.write_registers(base + model.point("OutWRte").offset, [out_rate, in_rate])
        await self.connection.write_registers(base + model.point("StorCtl_Mod").offset, [mode])
        applied = percent / 100.0 * wcha_max_w / 1000.0
        return Ack(self.name, setpoint_kw, applied if setpoint_kw >= 0 else -applied)


def _setpoint_from_controls(storage: list[int]) -> float | None:
    model = sunspec.STORAGE_CONTROLS
    mode = sunspec.decode_point(storage, model, "StorCtl_Mod")
    wcha_max_w = sunspec.decode_point(storage, model, "WChaMax")
    out_rate = sunspec.decode_point(storage, model, "OutWRte") or 0.0
    in_rate = sunspec.decode_point(storage, model, "InWRte") or 0.0
    if mode is None or not wcha_max_w:
        return None
    if int(mode) == sunspec.STORCTL_DISCHARGE:
        return out_rate / 100.0 * wcha_max_w / 1000.0
    if int(mode) == sunspec.STORCTL_CHARGE:
        return -in_rate / 100.0 * wcha_max_w / 1000.0
    return 0.0
