"""SunSpec drivers: a PV inverter (1 + 101/102/103, or DER 701), a meter (1 + 201/202/203/204)
and a battery (1 + inverter + 124 storage controls, SoC from 802 where 124 lacks it). The models
are found by scanning, once, from 'SunS'.

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
        return {p: sunspec.text_point(block, sunspec.COMMON, p) for p in ("Mn", "Md", "SN", "Vr")}

    def first_of(self, candidates: tuple[int, ...]) -> int | None:
        found = self.model_addresses or {}
        return next((m for m in candidates if m in found), None)


def _kw(value: float | None) -> float | None:
    return None if value is None else value / 1000.0


class _AcPower(SunSpecDevice):
    """AC power and energy from an inverter model (103/102/101) or, failing that, DER model 701."""

    async def models(self) -> dict[int, int]:
        found = await super().models()
        if not any(m in found for m in (*sunspec.INVERTER_MODELS, 701)):
            raise DeviceUnavailable(
                self.name, f"no inverter model (101, 102, 103 or 701) found (device has {sorted(found)})"
            )
        return found

    async def _ac(self) -> tuple[float | None, float | None]:
        await self.models()
        inverter = self.first_of(sunspec.INVERTER_MODELS)
        if inverter is not None:
            block, model = await self.block(inverter), sunspec.MODELS[inverter]
            return _kw(sunspec.number_point(block, model, "W")), _kw(sunspec.number_point(block, model, "WH"))
        block, model = await self.block(701), sunspec.DER_AC_MEASUREMENT
        return _kw(sunspec.number_point(block, model, "W")), _kw(sunspec.number_point(block, model, "TotWhInj"))


@register("sunspec_inverter")
class SunSpecInverter(_AcPower):
    """A PV inverter: AC power out is positive (into the bus); energy is its lifetime yield."""

    async def _read(self) -> Reading:
        power_kw, energy_kwh = await self._ac()
        return self._good(power_kw=self._signed(power_kw), energy_kwh=energy_kwh)


@register("sunspec_meter")
class SunSpecMeter(SunSpecDevice):
    """A meter (201 single-phase, 202 split-phase, 203 wye, 204 delta): import is positive;
    ``invert_sign`` for a meter on a load."""

    async def models(self) -> dict[int, int]:
        found = await super().models()
        if not any(m in found for m in sunspec.METER_MODELS):
            raise DeviceUnavailable(self.name, f"no meter model (201-204) found (device has {sorted(found)})")
        return found

    async def _read(self) -> Reading:
        await self.models()
        model_id = self.first_of(sunspec.METER_MODELS)
        if model_id is None:  # models() found one: only a changed device layout gets here
            raise DeviceUnavailable(self.name, "no meter model (201-204) found")
        block, model = await self.block(model_id), sunspec.MODELS[model_id]
        return self._good(
            power_kw=self._signed(_kw(sunspec.number_point(block, model, "W"))),
            energy_kwh=_kw(sunspec.number_point(block, model, "TotWhImp")),
        )


@register("sunspec_battery")
class SunSpecBattery(_AcPower):
    """A battery inverter: power from 103/102/101 (or 701), SoC from 124 (or 802 battery base),
    set-points through model 124."""

    required_models = (1, 124)
    writable = True

    async def _read(self) -> Reading:
        power_kw, energy_kwh = await self._ac()
        storage = await self.block(124)
        soc_percent = sunspec.number_point(storage, sunspec.STORAGE_CONTROLS, "ChaState")
        if soc_percent is None and 802 in (self.model_addresses or {}):
            soc_percent = sunspec.number_point(await self.block(802), sunspec.BATTERY_BASE, "SoC")
        return self._good(
            power_kw=power_kw,
            energy_kwh=energy_kwh,
            soc_fraction=None if soc_percent is None else soc_percent / 100.0,
            setpoint_kw=_setpoint_from_controls(storage),
        )

    async def _write(self, setpoint_kw: float) -> Ack:
        storage = await self.block(124)
        model = sunspec.STORAGE_CONTROLS
        wcha_max_w = sunspec.number_point(storage, model, "WChaMax")
        rate_sf = sunspec.number_point(storage, model, "InOutWRte_SF")
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
    mode = sunspec.number_point(storage, model, "StorCtl_Mod")
    wcha_max_w = sunspec.number_point(storage, model, "WChaMax")
    out_rate = sunspec.number_point(storage, model, "OutWRte") or 0.0
    in_rate = sunspec.number_point(storage, model, "InWRte") or 0.0
    if mode is None or not wcha_max_w:
        return None
    if int(mode) == sunspec.STORCTL_DISCHARGE:
        return out_rate / 100.0 * wcha_max_w / 1000.0
    if int(mode) == sunspec.STORCTL_CHARGE:
        return -in_rate / 100.0 * wcha_max_w / 1000.0
    return 0.0
