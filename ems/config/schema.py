"""Typed schema of a portfolio file (TOML), validated with pydantic.

Every key, its unit and its default are documented in ``docs/config.md``; this module is the
single place where a key is declared. Units are name suffixes: ``_kw``, ``_kwh``, ``_yen``,
``_deg``, ``_km``. Sign convention (docs/architecture.md, Contracts): power into a site's bus is positive.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ems.config.bcp import BcpSettings
from ems.config.console import ConsoleSettings
from ems.config.control import ControlSettings, StorageSettings
from ems.config.dispatch import DispatchSettings
from ems.config.drivers import EchonetDriver, EchonetNetwork, ModbusTlsFiles, OcppDriver, OcppServer, TwinSettings
from ems.config.forecasting import ForecastingSettings
from ems.config.market import MarketSettings, OpenAdrSettings

SLOTS_PER_DAY = 48  # JEPX 30-minute slots


class Strict(BaseModel):
    """Base: unknown keys are errors, so a typo is caught rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- drivers -------------------------------------------------------------------------------


class SimDriver(Strict):
    """The device is simulated by the digital twin, in-process."""

    kind: Literal["sim"] = "sim"


class ModbusDriver(Strict):
    """A device reached over Modbus TCP."""

    kind: Literal["modbus"]
    transport: Literal["tcp", "rtu"] = Field("tcp", description="tcp, or rtu for a serial line (RS-485)")
    host: str = Field("", validate_default=True, description="address of the device or gateway (TCP)")
    port: int = Field(502, ge=1, le=65535, description="TCP port")
    unit_id: int = Field(1, ge=0, le=247, description="Modbus unit (slave) id")
    register_map: str = Field("sunspec", description="'sunspec' or the name of a [register_maps] entry")
    model: str | None = Field(None, description="registered driver name; defaults by asset type")
    timeout_s: float = Field(1.0, gt=0, description="a read or write that takes longer counts as no answer")
    serial_port: str | None = Field(None, description="rtu: the serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(9600, gt=0, description="rtu: bits per second")
    parity: Literal["N", "E", "O"] = Field("N", description="rtu: none, even or odd")
    stopbits: Literal[1, 2] = Field(1, description="rtu: stop bits")
    word_order: Literal["big", "little"] = Field(
        "big", description="'little': the device sends a 32-bit value's low word first"
    )
    tls: ModbusTlsFiles | None = Field(
        None, description="Modbus/TCP Security: TLS with a client certificate (port 802 by convention)"
    )

    @field_validator("host")
    @classmethod
    def _tcp_needs_host(cls, host: str, info) -> str:
        if info.data.get("transport", "tcp") == "tcp" and not host:
            raise ValueError("Field required (a Modbus TCP device needs 'host')")
        return host

    @model_validator(mode="after")
    def _rtu_needs_port(self) -> ModbusDriver:
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("a Modbus RTU device needs 'serial_port'")
        return self


class MqttDriver(Strict):
    """A device that publishes telemetry and takes commands over MQTT."""

    kind: Literal["mqtt"]
    topic_prefix: str = Field(description="topics of this device start with it")
    model: str | None = Field(None, description="registered driver name; defaults by asset type")
    timeout_s: float = Field(2.0, gt=0, description="a set-point not acknowledged within it has failed")


# Union, not `|`: docs/config.md renders the annotation, and the reference keeps its wording
Driver = Annotated[Union[SimDriver, ModbusDriver, MqttDriver, OcppDriver, EchonetDriver], Field(discriminator="kind")]  # noqa: UP007


class RegisterSpec(Strict):
    """One point of a vendor register map: address, type, scale and unit."""

    address: int = Field(ge=0, le=65535, description="register address (0-based)")
    type: Literal["int16", "uint16", "int32", "uint32", "float32"] = Field(
        "int16", description="int16, uint16, int32, uint32 or float32"
    )
    scale: float = Field(1.0, description="engineering value = raw value x scale")
    writable: bool = Field(False, description="set-points may be written here")
    table: Literal["holding", "input"] = Field("holding", description="holding or input registers")


class MqttBroker(Strict):
    host: str = Field("127.0.0.1", description="broker address")
    port: int = Field(1883, ge=1, le=65535, description="broker port")
    client_id: str = Field("ems-controller", description="the controller's MQTT client id (ACLs key on it)")
    tls: bool = Field(False, description="connect over TLS")
    ca_file: str | None = Field(None, description="CA certificate for TLS")
    username_env: str | None = Field(None, description="environment variable holding the user name")
    password_env: str | None = Field(None, description="environment variable holding the password")
    credentials_file: str | None = Field(None, description="file with 'user:password'; never the TOML itself")
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    cert_file: str | None = Field(None, description="client certificate (PEM) for certificate authentication")
    key_file: str | None = None


# --- assets --------------------------------------------------------------------------------


class Asset(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="unique id: lower-case letters, digits, '_' and '-'")
    site: str = Field(description="id of the site it is connected at")
    driver: Driver = Field(
        default_factory=SimDriver, description="how the device is reached (see the driver tables below)"
    )


class Site(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="unique id")
    name: str = Field("", description="display name")
    latitude_deg: float = Field(ge=-90, le=90, description="north positive")
    longitude_deg: float = Field(ge=-180, le=180, description="east positive")
    tariff: str = Field("default", description="name of a [tariffs] entry")


class GridConnection(Asset):
    import_limit_kw: float = Field(gt=0, description="most power the site may draw from the grid")
    export_limit_kw: float = Field(0.0, ge=0, description="most power the site may feed back")
    contract_demand_kw: float | None = Field(
        None, gt=0, description="peak already billed this year; a new peak above it pays the demand charge"
    )
    exclusive_import_export: bool = Field(
        True, description="the contract forbids importing and exporting in the same slot"
    )


class PvArray(Asset):
    capacity_kwp: float = Field(gt=0, description="peak DC capacity")
    inverter_limit_kw: float | None = Field(None, gt=0, description="AC output limit (none: no clipping)")
    tilt_deg: float = Field(20.0, ge=0, le=90, description="panel tilt from horizontal")
    azimuth_deg: float = Field(180.0, ge=0, lt=360, description="0 north, 90 east, 180 south")
    profile: str = Field("pv_spring", description="name of a [profiles] entry, output per kWp [kW/kWp]")
    curtailable: bool = Field(True, description="the plan may curtail it")


class SiteLoad(Asset):
    peak_kw: float = Field(gt=0, description="the profile (peak 1.0) is scaled by this [kW]")
    profile: str = Field("office_weekday", description="name of a [profiles] entry (peak 1.0)")


class FlexibleLoad(Asset):
    """A load that needs an amount of energy each day and does not mind when, within a daily
    window (a water heater, a pump filling a tank, a cold store's compressor): the plan places it."""

    power_kw: float = Field(gt=0, description="most power it draws")
    energy_per_day_kwh: float = Field(gt=0, description="energy it needs each day, drawn inside its window")
    window_start: dt.time = Field(dt.time(0, 0), description="local time its daily window opens")
    window_end: dt.time = Field(
        dt.time(0, 0),
        description="local time the window closes (at or before the start: the next day, so 00:00 to 00:00 is all day)",
    )
    shortfall_penalty_yen_per_kwh: float = Field(
        300.0, gt=0, description="price of each kWh of a day's energy the plan leaves undelivered"
    )
    failsafe_kw: float = Field(
        0.0, le=0, description="set-point when the controller loses the device or the plan (0: off)"
    )

    @property
    def window_hours(self) -> float:
        start = self.window_start.hour * 60 + self.window_start.minute
        end = self.window_end.hour * 60 + self.window_end.minute
        return ((end - start) % (24 * 60) or 24 * 60) / 60.0

    @model_validator(mode="after")
    def _fits_the_window(self) -> FlexibleLoad:
        if self.energy_per_day_kwh > self.power_kw * self.window_hours + 1e-9:
            raise ValueError(
                f"energy_per_day_kwh {self.energy_per_day_kwh:g} exceeds what power_kw {self.power_kw:g} can "
                f"deliver in its {self.window_hours:g} h window"
            )
        return self


class Battery(Asset):
    capacity_kwh: float = Field(gt=0, description="nominal energy")
    charge_power_kw: float = Field(gt=0, description="most charging power (AC side)")
    discharge_power_kw: float = Field(gt=0, description="most discharging power (AC side)")
    charge_efficiency: float = Field(0.95, gt=0, le=1, description="AC to stored energy")
    discharge_efficiency: float = Field(0.95, gt=0, le=1, description="stored energy to AC")
    soc_min_fraction: float = Field(0.1, ge=0, lt=1, description="lowest state of charge in normal operation")
    soc_max_fraction: float = Field(0.95, gt=0, le=1, description="highest state of charge")
    initial_soc_fraction: float = Field(0.5, ge=0, le=1, description="used when no telemetry is available")
    degradation_cost_yen_per_kwh: float = Field(0.0, ge=0, description="per kWh discharged")
    bcp_reserve_kwh: float = Field(0.0, ge=0, description="energy kept for an outage at all times")
    failsafe_kw: float = Field(0.0, description="set-point when the controller loses the device or the plan")

    @model_validator(mode="after")
    def _soc_window(self) -> Battery:
        if self.soc_min_fraction >= self.soc_max_fraction:
            raise ValueError("soc_min_fraction must be below soc_max_fraction")
        if self.bcp_reserve_kwh > self.capacity_kwh * self.soc_max_fraction:
            raise ValueError("bcp_reserve_kwh exceeds the usable capacity (capacity_kwh * soc_max_fraction)")
        return self


class Charger(Asset):
    charge_power_kw: float = Field(gt=0, description="most charging power")
    discharge_power_kw: float = Field(0.0, ge=0, description="0 for a charge-only charger")
    efficiency: float = Field(0.95, gt=0, le=1, description="one-way, each direction")
    v2h: bool = Field(False, description="can feed a building or shelter (vehicle-to-home/building)")
    failsafe_kw: float | None = Field(
        None, description="default: charge-only at control.charger_failsafe_kw or the rating if lower"
    )

    @property
    def bidirectional(self) -> bool:
        return self.discharge_power_kw > 0


class Duty(Strict):
    """A daily shift away from the charger (local times; return may be past midnight)."""

    depart: dt.time = Field(description="local time it leaves")
    return_: dt.time = Field(alias="return", description="local time it is back (may be past midnight)")
    distance_km: float = Field(ge=0, description="distance driven in the shift")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Vehicle(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="unique id")
    battery_kwh: float = Field(gt=0, description="usable battery capacity")
    consumption_kwh_per_km: float = Field(gt=0, description="average energy use while driving")
    seats: int = Field(4, ge=1, description="passenger seats")
    v2g_allowed: bool = Field(False, description="the vehicle may discharge to a building or the grid")
    home_charger: str | None = Field(
        None, description="charger it uses between its duties; none: plans come from the dispatcher"
    )
    soc_min_fraction: float = Field(0.1, ge=0, lt=1, description="lowest state of charge ever planned")
    soc_max_fraction: float = Field(0.95, gt=0, le=1, description="highest state of charge charged to")
    initial_soc_fraction: float = Field(0.6, ge=0, le=1, description="used when no telemetry is available")
    reserve_kwh: float = Field(5.0, ge=0, description="energy kept on arrival after any duty")
    duties: tuple[Duty, ...] = Field((), description="daily shifts away from the charger")
    driver: Driver = Field(
        default_factory=SimDriver, description="how the vehicle reports (see the driver tables below)"
    )


class Shelter(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="unique id")
    site: str = Field(description="site whose bus feeds the shelter")
    name: str = Field("", description="display name")
    critical_load_kw: float = Field(gt=0, description="the critical profile (peak 1.0) is scaled by this")
    profile: str = Field("shelter_critical", description="name of a [profiles] entry for the critical load (peak 1.0)")
    priority: int = Field(1, ge=1, description="1 is most important")
    v2h_points: tuple[str, ...] = Field((), description="ids of V2H chargers at the shelter")
    driver: Driver = Field(default_factory=SimDriver, description="how the shelter's meter is reached")


class Tariff(Strict):
    """Prices and emissions per 30-minute slot of the day (48 values, slot 0 starts 00:00 local)."""

    import_price_yen_per_kwh: tuple[float, ...] = Field(description="48 values: price paid per kWh imported")
    export_price_yen_per_kwh: tuple[float, ...] = Field(description="48 values: price earned per kWh exported")
    co2_kg_per_kwh: tuple[float, ...] = Field(description="48 values: emission factor of imported electricity")
    carbon_price_yen_per_kg: float = Field(0.0, ge=0, description="internal price of CO2 in the objective")
    demand_charge_yen_per_kw_month: float = Field(
        0.0, ge=0, description="basic charge per kW of contract demand per month"
    )
    demand_charge_months: int = Field(12, ge=1, description="months a new peak stays billed")

    @field_validator("import_price_yen_per_kwh", "export_price_yen_per_kwh", "co2_kg_per_kwh")
    @classmethod
    def _one_day(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if len(values) != SLOTS_PER_DAY:
            raise ValueError(f"needs {SLOTS_PER_DAY} values (one per 30-minute slot), got {len(values)}")
        return values


class Profile(Strict):
    """A daily shape: 48 half-hourly values (from slot 0 at 00:00), or a CSV of time,value."""

    values: tuple[float, ...] | None = Field(None, description="48 values, slot 0 at 00:00 local")
    csv: str | None = Field(None, description="path relative to the config file")

    @model_validator(mode="after")
    def _one_source(self) -> Profile:
        if (self.values is None) == (self.csv is None):
            raise ValueError("give exactly one of 'values' or 'csv'")
        if self.values is not None:
            if len(self.values) != SLOTS_PER_DAY:
                raise ValueError(f"'values' needs {SLOTS_PER_DAY} entries, got {len(self.values)}")
            if min(self.values) < 0:
                raise ValueError("'values' must not be negative")
        return self


class Planning(Strict):
    step_minutes: int = Field(30, description="one of 5, 10, 15, 30, 60")
    horizon_hours: int = Field(48, ge=1, le=168, description="length of each plan")
    time_limit_s: float = Field(30.0, gt=0, description="solver time limit; the best plan found by then is used")
    mip_gap: float = Field(0.005, ge=0, lt=1, description="relative MIP gap at which the solver stops")
    ev_shortfall_penalty_yen_per_kwh: float = Field(
        500.0, gt=0, description="price of each kWh an EV leaves short of its departure target"
    )
    bcp_shortfall_penalty_yen_per_kwh: float = Field(
        200.0, gt=0, description="price of each kWh below a BCP reserve, per hour"
    )
    drive_shortfall_penalty_yen_per_kwh: float = Field(
        5_000.0,
        gt=0,
        description="price of each kWh a vehicle's duty needs that its battery cannot hold (a duty left undone)",
    )
    throughput_epsilon_yen_per_kwh: float = Field(
        1e-3,
        ge=0,
        description="tiny cost on storage throughput that breaks ties, so a plan never charges and discharges at once "
        "when that is free; keep it far below any real price",
    )
    terminal_value_yen_per_kwh: float | None = Field(
        None,
        ge=0,
        description="value of energy left in storage at the horizon's end; "
        "default: 90 % of the mean import price over the horizon",
    )
    unserved_load_yen_per_kwh: float = Field(
        10_000.0,
        gt=0,
        description="price of each kWh of load left unserved where the grid cannot carry it (import limit, outage); "
        "keep it above every other penalty, it is the last resort",
    )

    @field_validator("step_minutes")
    @classmethod
    def _divides_slot(cls, value: int) -> int:
        if value not in (5, 10, 15, 30, 60):
            raise ValueError("must be one of 5, 10, 15, 30, 60")
        return value


class PortfolioInfo(Strict):
    name: str = Field(description="display name")
    timezone: str = Field("Asia/Tokyo", description="IANA zone of the site times")
    latitude_deg: float = Field(ge=-90, le=90, description="city centre")
    longitude_deg: float = Field(ge=-180, le=180, description="city centre")
    depot_site: str | None = Field(None, description="site of the taxi depot")
    service_area_km: float = Field(15.0, gt=0, description="side of the square service area around the centre")


class Portfolio(Strict):
    """A whole portfolio file."""

    portfolio: PortfolioInfo
    planning: Planning = Field(default_factory=Planning)
    mqtt: MqttBroker = Field(default_factory=MqttBroker)
    ocpp: OcppServer = Field(default_factory=OcppServer)
    echonet: EchonetNetwork = Field(default_factory=EchonetNetwork)
    sites: tuple[Site, ...]
    grid_connections: tuple[GridConnection, ...]
    pv_arrays: tuple[PvArray, ...] = ()
    loads: tuple[SiteLoad, ...] = ()
    flexible_loads: tuple[FlexibleLoad, ...] = ()
    batteries: tuple[Battery, ...] = ()
    chargers: tuple[Charger, ...] = ()
    vehicles: tuple[Vehicle, ...] = ()
    shelters: tuple[Shelter, ...] = ()
    tariffs: dict[str, Tariff]
    profiles: dict[str, Profile] = Field(default_factory=dict)
    register_maps: dict[str, dict[str, RegisterSpec]] = Field(default_factory=dict)
    control: ControlSettings = Field(default_factory=ControlSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    twin: TwinSettings = Field(default_factory=TwinSettings)
    forecasting: ForecastingSettings = Field(default_factory=ForecastingSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    bcp: BcpSettings = Field(default_factory=BcpSettings)
    market: MarketSettings | None = None
    openadr: OpenAdrSettings | None = None
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
