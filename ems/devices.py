"""From the portfolio file to live drivers: where each asset is reached, and with which driver.

The mapping of ``kind = "sim"`` assets to the twin's endpoints lives here (and only here), so
``ems twin`` serves each asset exactly where ``ems devices`` and the control loop look for it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from drivers import registry
from drivers.api import Ack, Reading
from drivers.mqtt.credentials import resolve_credentials
from drivers.mqtt.link import BrokerSettings, MqttLink
from drivers.mqtt.presence import check_absent, presence_wills
from ems.config.schema import Portfolio
from ems.guard import WriteGuard

log = logging.getLogger(__name__)

AssetType = Literal["grid", "pv", "load", "battery", "shelter", "charger", "vehicle"]

# Served over Modbus (SunSpec) by the twin, in this order; index i gets modbus_base_port + i.
MODBUS_TABLES: tuple[tuple[str, AssetType], ...] = (
    ("grid_connections", "grid"),
    ("pv_arrays", "pv"),
    ("loads", "load"),
    ("batteries", "battery"),
    ("shelters", "shelter"),
)
MQTT_TABLES: tuple[tuple[str, AssetType], ...] = (("chargers", "charger"), ("vehicles", "vehicle"))
DEFAULT_DRIVER: dict[AssetType, str] = {
    "grid": "sunspec_meter",
    "pv": "sunspec_inverter",
    "load": "sunspec_meter",
    "battery": "sunspec_battery",
    "shelter": "sunspec_meter",
    "charger": "mqtt_charger",
    "vehicle": "mqtt_vehicle",
}
CONSUMERS: set[AssetType] = {"load", "shelter"}  # their meters count consumption as positive


@dataclass(frozen=True)
class DeviceEndpoint:
    """One device: what it is, which driver reads it, with which settings."""

    asset_id: str
    asset_type: AssetType
    protocol: Literal["modbus", "mqtt"]
    driver: str
    settings: dict[str, Any]
    simulated: bool

    @property
    def where(self) -> str:
        s = self.settings
        if self.protocol == "modbus" and s.get("tls"):
            return f"modbus+tls://{s['host']}:{s['port']}/{s.get('unit_id', 1)}"
        return f"modbus://{s['host']}:{s['port']}/{s.get('unit_id', 1)}" if self.protocol == "modbus" else f"mqtt:{s['topic_prefix']}"


def _rating_kw(asset: Any, asset_type: AssetType) -> float | None:
    return {
        "grid": lambda a: max(a.import_limit_kw, a.export_limit_kw),
        "pv": lambda a: a.inverter_limit_kw or a.capacity_kwp,
        "load": lambda a: a.peak_kw,
        "battery": lambda a: max(a.charge_power_kw, a.discharge_power_kw),
        "shelter": lambda a: a.critical_load_kw,
    }.get(asset_type, lambda a: None)(asset)


def endpoints(portfolio: Portfolio) -> list[DeviceEndpoint]:
    """Every configured device, sim or real, in a fixed order."""
    twin = portfolio.twin
    found: list[DeviceEndpoint] = []
    index = 0
    for table, asset_type in MODBUS_TABLES:
        for asset in getattr(portfolio, table):
            drv = asset.driver
            common = {"name": asset.id, "rated_power_kw": _rating_kw(asset, asset_type), "invert_sign": asset_type in CONSUMERS}
            if drv.kind == "sim":
                settings = {**common, "host": twin.modbus_host, "port": twin.modbus_base_port + index, "unit_id": 1, "timeout_s": twin.modbus_timeout_s}
                if twin.modbus_tls is not None:
                    settings["tls"] = twin_client_tls(twin.modbus_tls)
                found.append(DeviceEndpoint(asset.id, asset_type, "modbus", DEFAULT_DRIVER[asset_type], settings, True))
                index += 1
            else:
                found.append(_configured(portfolio, asset.id, asset_type, drv, common))
    for table, asset_type in MQTT_TABLES:
        for asset in getattr(portfolio, table):
            drv = asset.driver
            common = {"name": asset.id}
            if asset_type == "charger":
                common["bidirectional"] = asset.bidirectional
                common["rated_power_kw"] = max(asset.charge_power_kw, asset.discharge_power_kw)  # readings beyond it: out-of-range
            if drv.kind == "sim":
                settings = {**common, "topic_prefix": f"{twin.topic_root}/{asset.id}", "timeout_s": twin.mqtt_timeout_s}
                found.append(DeviceEndpoint(asset.id, asset_type, "mqtt", DEFAULT_DRIVER[asset_type], settings, True))
            else:
                found.append(_configured(portfolio, asset.id, asset_type, drv, common))
    return found


def twin_client_tls(tls: Any) -> dict[str, str]:
    """The client end of the twin's Modbus/TCP Security, as a driver's ``tls`` settings."""
    return {"ca_file": tls.ca_file, "cert_file": tls.client_cert_file, "key_file": tls.client_key_file}


def _configured(portfolio: Portfolio, asset_id: str, asset_type: AssetType, drv: Any, common: dict) -> DeviceEndpoint:
    if drv.kind == "mqtt":
        settings = {"name": asset_id, "topic_prefix": drv.topic_prefix, "timeout_s": drv.timeout_s}
        if asset_type == "charger":
            settings["bidirectional"] = common.get("bidirectional", False)
            settings["rated_power_kw"] = common.get("rated_power_kw")
        return DeviceEndpoint(asset_id, asset_type, "mqtt", drv.model or DEFAULT_DRIVER.get(asset_type, "mqtt_charger"), settings, False)
    settings = {**common, "host": drv.host, "port": drv.port, "unit_id": drv.unit_id, "timeout_s": drv.timeout_s}
    if drv.tls is not None:
        settings["tls"] = drv.tls.model_dump()
    if drv.register_map == "sunspec":
        return DeviceEndpoint(asset_id, asset_type, "modbus", drv.model or DEFAULT_DRIVER[asset_type], settings, False)
    points = {name: spec.model_dump() for name, spec in portfolio.register_maps[drv.register_map].items()}
    settings.update(map_name=drv.register_map, points=points)
    return DeviceEndpoint(asset_id, asset_type, "modbus", drv.model or "modbus_vendor", settings, False)


def controller_broker(portfolio: Portfolio, config_path: str | Path, host: str | None = None, port: int | None = None) -> BrokerSettings:
    """The controller's broker settings, credentials resolved from the environment or a file."""
    mqtt = portfolio.mqtt
    base = Path(config_path).parent
    credentials_file = str(base / mqtt.credentials_file) if mqtt.credentials_file else None
    user, password = resolve_credentials(mqtt.username_env, mqtt.password_env, credentials_file)
    return BrokerSettings(
        host=host or mqtt.host,
        port=port or mqtt.port,
        client_id=mqtt.client_id,
        protocol=mqtt.protocol,
        tls=mqtt.tls,
        ca_file=str(base / mqtt.ca_file) if mqtt.ca_file else None,
        cert_file=str(base / mqtt.cert_file) if mqtt.cert_file else None,
        key_file=str(base / mqtt.key_file) if mqtt.key_file else None,
        username=user,
        password=password,
    )


class DeviceConfigError(ValueError):
    """A device's driver settings are wrong; names the device and the driver."""

    def __init__(self, asset_id: str, driver: str, error: Exception):
        if isinstance(error, ValidationError):
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        else:
            detail = str(error)
        super().__init__(f"device {asset_id!r} (driver {driver!r}): {detail}")


class DeviceSet:
    """All configured devices, opened together: read them all, write through the guard."""

    def __init__(self, portfolio: Portfolio, broker: BrokerSettings, only: set[str] | None = None, presence_role: str | None = None):
        self.portfolio = portfolio
        self.broker = broker
        # With a role (the controller), the client id is held exclusively on the broker: open()
        # raises drivers.mqtt.presence.AlreadyRunning if another process holds it.
        self.presence_role = presence_role
        self.endpoints = [e for e in endpoints(portfolio) if only is None or e.asset_id in only]
        self.guard = WriteGuard(portfolio)
        self.link: MqttLink | None = None
        self.drivers: dict[str, Any] = {}

    async def open(self, connect_timeout_s: float | None = None) -> None:
        """Build the drivers; wait for the broker at most as long as the MQTT devices' timeout."""
        mqtt_timeouts = [e.settings["timeout_s"] for e in self.endpoints if e.protocol == "mqtt"]
        connect_timeout_s = connect_timeout_s or max(mqtt_timeouts, default=0.0)
        if mqtt_timeouts and self.presence_role is not None:
            await asyncio.to_thread(check_absent, self.broker, max(connect_timeout_s, 1.0))
            will, birth = presence_wills(self.broker.client_id, self.presence_role)
            self.link = MqttLink(self.broker, will=will, birth=birth)
        elif mqtt_timeouts:
            self.link = MqttLink(self.broker)
        for endpoint in self.endpoints:
            resources = {"link": self.link} if endpoint.protocol == "mqtt" else {}
            try:
                driver = registry.create(endpoint.driver, endpoint.settings, **resources)
            except (ValidationError, KeyError) as error:
                raise DeviceConfigError(endpoint.asset_id, endpoint.driver, error) from None
            await driver.connect()
            self.drivers[endpoint.asset_id] = driver
        if self.link is not None:
            self.link.start()
            if not await asyncio.to_thread(self.link.wait_connected, connect_timeout_s):
                log.warning("MQTT broker %s:%d not reachable yet (%s); MQTT devices will read as missing",
                            self.broker.host, self.broker.port, self.link.last_error or "no answer")

    async def close(self) -> None:
        for driver in self.drivers.values():
            await driver.close()
        if self.link is not None:
            self.link.stop()

    async def read_all(self) -> list[Reading]:
        return list(await asyncio.gather(*(d.read() for d in self.drivers.values())))

    async def write(self, device: str, setpoint_kw: float) -> Ack:
        """Clamp ``setpoint_kw`` with the guard (refusing read-only devices), then write it."""
        driver = self.drivers[device]
        reading = await driver.read()
        decision = self.guard.check(device, setpoint_kw, reading)
        return await driver.write(decision.allowed_kw)
