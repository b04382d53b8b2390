"""Simulated devices as a Modbus client sees them: physics mirrored into register images.

Each class pairs a physics object with a register image; ``refresh()`` copies the physics into
the registers (the twin calls it after every step) and a client's write is applied to the
physics at once, so a battery told to discharge reports that power on the next read.
"""

from __future__ import annotations

import logging

from drivers.modbus import sunspec
from drivers.modbus.connection import WIDTH, decode, encode
from drivers.modbus.vendor import VendorPoint
from drivers.sim.modbus_server import RegisterStore, SunSpecImage
from drivers.sim.physics import SimBattery, SimMeter, SimPv

log = logging.getLogger(__name__)


def power_scale_factor(rating_kw: float) -> int:
    """The finest SunSpec scale factor at which 150 % of the rating still fits an int16 [W]."""
    for sf in range(-2, 5):
        if rating_kw * 1500.0 / 10.0**sf <= 32767:
            return sf
    raise ValueError(f"rating {rating_kw} kW too large for an int16 power register")


def _nameplate(image: SunSpecImage, name: str, model: str) -> None:
    image.set_raw(1, "Mn", "AraoTwin")
    image.set_raw(1, "Md", model)
    image.set_raw(1, "SN", name[:32])
    image.set_raw(1, "Vr", "1.0")
    image.set_raw(1, "DA", 1)


def _inverter_scales(image: SunSpecImage, rating_kw: float) -> None:
    image.set_raw(103, "W_SF", power_scale_factor(rating_kw))
    image.set_raw(103, "WH_SF", 0)
    image.set_raw(103, "A_SF", -1)
    image.set_raw(103, "V_SF", -1)
    image.set_raw(103, "Hz_SF", -2)
    image.set_scaled(103, "PhVphA", 230.0)
    image.set_scaled(103, "Hz", 60.0)  # Kyushu is on the 60 Hz grid


class SunSpecPvDevice:
    def __init__(self, pv: SimPv):
        self.physics = pv
        self.image = SunSpecImage([sunspec.COMMON, sunspec.INVERTER_THREE_PHASE])
        _nameplate(self.image, pv.name, "PV inverter")
        _inverter_scales(self.image, pv.inverter_limit_kw or pv.capacity_kwp)
        self.refresh()

    @property
    def store(self) -> RegisterStore:
        return self.image.store

    def refresh(self) -> None:
        pv = self.physics
        self.image.set_scaled(103, "W", pv.power_kw * 1000.0)
        self.image.set_scaled(103, "WH", pv.energy.import_kwh * 1000.0)
        self.image.set_raw(103, "St", 4 if pv.power_kw > 0 else 2)  # MPPT, or sleeping


class SunSpecMeterDevice:
    """A meter; ``consumption_positive`` for a meter on a load (W > 0 while it consumes)."""

    def __init__(self, meter: SimMeter, rating_kw: float, consumption_positive: bool = False):
        self.physics = meter
        self.sign = -1.0 if consumption_positive else 1.0
        self.image = SunSpecImage([sunspec.COMMON, sunspec.METER_THREE_PHASE_WYE])
        _nameplate(self.image, meter.name, "Meter")
        self.image.set_raw(203, "W_SF", power_scale_factor(rating_kw))
        self.image.set_raw(203, "TotWh_SF", 0)
        self.image.set_raw(203, "V_SF", -1)
        self.image.set_raw(203, "Hz_SF", -2)
        self.image.set_scaled(203, "PhV", 230.0)
        self.image.set_scaled(203, "Hz", 60.0)
        self.refresh()

    @property
    def store(self) -> RegisterStore:
        return self.image.store

    def refresh(self) -> None:
        meter = self.physics
        self.image.set_scaled(203, "W", self.sign * meter.power_kw * 1000.0)
        into, out_of = meter.energy.import_kwh, meter.energy.export_kwh
        imported, exported = (out_of, into) if self.sign < 0 else (into, out_of)
        self.image.set_scaled(203, "TotWhImp", imported * 1000.0)
        self.image.set_scaled(203, "TotWhExp", exported * 1000.0)


class SunSpecBatteryDevice:
    """Models 1, 103 and 124: a client's write to model 124 becomes the battery's set-point."""

    RATE_SF = -1  # InOutWRte in 0.1 %

    def __init__(self, battery: SimBattery):
        self.physics = battery
        self.wcha_max_w = max(battery.charge_power_kw, battery.discharge_power_kw) * 1000.0
        image = SunSpecImage([sunspec.COMMON, sunspec.INVERTER_THREE_PHASE, sunspec.STORAGE_CONTROLS])
        self.image = image
        _nameplate(image, battery.name, "Battery inverter")
        _inverter_scales(image, self.wcha_max_w / 1000.0)
        wcha_sf = max(0, power_scale_factor(self.wcha_max_w / 1000.0))
        image.set_raw(124, "WChaMax_SF", wcha_sf)
        image.set_scaled(124, "WChaMax", self.wcha_max_w)
        image.set_raw(124, "InOutWRte_SF", self.RATE_SF)
        image.set_raw(124, "ChaState_SF", -1)
        image.set_raw(124, "MinRsvPct_SF", 0)
        image.set_raw(124, "StorAval_SF", 0)
        image.set_raw(124, "StorCtl_Mod", sunspec.STORCTL_CHARGE | sunspec.STORCTL_DISCHARGE)
        image.set_scaled(124, "MinRsvPct", battery.soc_min_fraction * 100.0)
        image.allow_write(124, "StorCtl_Mod", "OutWRte", "InWRte", "InOutWRte_RvrtTms")
        image.store.on_write = self._written
        self.refresh()

    @property
    def store(self) -> RegisterStore:
        return self.image.store

    def _written(self, address: int, words: list[int]) -> None:
        mode = self.image.get_signed(124, "StorCtl_Mod") & 0xFFFF
        scale = 10.0**self.RATE_SF / 100.0 * self.wcha_max_w / 1000.0
        out_kw = self.image.get_signed(124, "OutWRte") * scale
        in_kw = self.image.get_signed(124, "InWRte") * scale
        if mode == sunspec.STORCTL_DISCHARGE:
            setpoint = out_kw
        elif mode == sunspec.STORCTL_CHARGE:
            setpoint = -in_kw
        else:
            setpoint = 0.0
        log.info("%s: set-point %.2f kW (StorCtl_Mod=%d)", self.physics.name, setpoint, mode)
        self.physics.apply_setpoint(setpoint)
        self.refresh()

    def refresh(self) -> None:
        battery = self.physics
        self.image.set_scaled(103, "W", battery.power_kw * 1000.0)
        self.image.set_scaled(103, "WH", battery.energy.import_kwh * 1000.0)
        self.image.set_raw(103, "St", 4)
        self.image.set_scaled(124, "ChaState", battery.soc_fraction * 100.0)
        self.image.set_raw(124, "ChaSt", 3 if battery.power_kw > 0 else 6 if battery.power_kw < 0 else 4)


class VendorBatteryDevice:
    """A non-SunSpec battery laid out by a vendor register map (the map is data)."""

    def __init__(self, battery: SimBattery, points: dict[str, VendorPoint]):
        self.physics = battery
        self.points = points
        top = max(p.address + WIDTH[p.type] for p in points.values())
        self.store = RegisterStore(0, top)
        if "setpoint_kw" in points:
            p = points["setpoint_kw"]
            self.store.writable.update(range(p.address, p.address + WIDTH[p.type]))
        self.store.on_write = self._written
        self.refresh()

    def _put(self, name: str, value: float) -> None:
        point = self.points.get(name)
        if point is not None:
            self.store.set(point.address, encode(value / point.scale, point.type))

    def _written(self, address: int, words: list[int]) -> None:
        point = self.points["setpoint_kw"]
        raw = decode(self.store.get(point.address, WIDTH[point.type]), point.type) or 0
        self.physics.apply_setpoint(raw * point.scale)
        self.refresh()

    def refresh(self) -> None:
        battery = self.physics
        self._put("power_kw", battery.power_kw)
        self._put("soc_percent", battery.soc_fraction * 100.0)
        self._put("energy_kwh", battery.energy.import_kwh)
        self._put("setpoint_kw", battery.setpoint_kw)
