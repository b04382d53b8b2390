"""From the portfolio file to live drivers: where each asset is reached, and with which driver.

The mapping of ``kind = "sim"`` assets to the twin's endpoints lives here (and only here), so
``ems twin`` serves each asset exactly where ``ems devices`` and the control loop look for it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from drivers import registry
from drivers.api import Ack, Reading, Writable
from drivers.mqtt.credentials import resolve_credentials
from drivers.mqtt.link import BrokerSettings, MqttLink
from drivers.mqtt.presence import check_absent, presence_wills
from ems.config.schema import Portfolio
from ems.guard import WriteGuard
from ems.optimise.registry import component_of

if TYPE_CHECKING:
    from drivers.echonet.client import EchonetClient
    from drivers.ocpp.csms import CentralSystem

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
    protocol: Literal["modbus", "mqtt", "ocpp", "echonet"]
    driver: str
    settings: dict[str, Any]
    simulated: bool

    @property
    def where(self) -> str:
        """How the device is reached, as its driver says (``where(settings)`` on the driver class)."""
        try:
            describe = getattr(registry.driver_class(self.driver), "where", None)
        except KeyError:
            return f"{self.protocol}: unknown driver {self.driver!r}"
        return describe(self.settings) if describe is not None else self.driver


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
            common = {
                "name": asset.id,
                "rated_power_kw": _rating_kw(asset, asset_type),
                "invert_sign": asset_type in CONSUMERS,
            }
            if drv.kind == "sim":
                settings = {
                    **common,
                    "host": twin.modbus_host,
                    "port": twin.modbus_base_port + index,
                    "unit_id": 1,
                    "timeout_s": twin.modbus_timeout_s,
                }
                if twin.modbus_tls is not None:
                    settings["tls"] = twin_client_tls(twin.modbus_tls)
                found.append(DeviceEndpoint(asset.id, asset_type, "modbus", DEFAULT_DRIVER[asset_type], settings, True))
                index += 1
            else:
                found.append(_configured(portfolio, asset.id, asset_type, drv, common))
    echonet_hosts = iter(ipaddress.ip_network(twin.echonet_network).hosts())
    for table, asset_type in MQTT_TABLES:
        for asset in getattr(portfolio, table):
            drv = asset.driver
            common = {"name": asset.id}
            if asset_type == "charger":
                common["bidirectional"] = asset.bidirectional
                common["rated_power_kw"] = max(
                    asset.charge_power_kw, asset.discharge_power_kw
                )  # readings beyond it: out-of-range
            if drv.kind == "sim" and asset_type == "charger" and _twin_protocol(twin, asset) != "mqtt":
                found.append(_twin_charger(portfolio, asset, common, echonet_hosts))
            elif drv.kind == "sim":
                settings = {**common, "topic_prefix": f"{twin.topic_root}/{asset.id}", "timeout_s": twin.mqtt_timeout_s}
                found.append(DeviceEndpoint(asset.id, asset_type, "mqtt", DEFAULT_DRIVER[asset_type], settings, True))
            else:
                found.append(_configured(portfolio, asset.id, asset_type, drv, common))
    return found


def twin_client_tls(tls: Any) -> dict[str, str]:
    """The client end of the twin's Modbus/TCP Security, as a driver's ``tls`` settings."""
    return {"ca_file": tls.ca_file, "cert_file": tls.client_cert_file, "key_file": tls.client_key_file}


def _twin_protocol(twin: Any, charger: Any) -> str:
    """How the twin serves a sim charger: V2H points follow ``twin.v2h``, the others ``twin.chargers``."""
    return twin.v2h if charger.v2h else twin.chargers


def charger_failsafe_kw(portfolio: Portfolio, charger: Any) -> float:
    """The charger's safe set-point as its kind defines it, the same the controller sends
    (configured, else charge-only at ``control.charger_failsafe_kw`` or the rating if lower)."""
    failsafe = component_of("ev").failsafe_kw(portfolio, charger.id)
    return failsafe if failsafe is not None else 0.0


def ocpp_id_tags(portfolio: Portfolio) -> dict[str, str]:
    """ID tag -> vehicle id: every vehicle's own id, plus the ``[ocpp] id_tags`` table."""
    return {**{v.id: v.id for v in portfolio.vehicles}, **portfolio.ocpp.id_tags}


def _twin_charger(portfolio: Portfolio, charger: Any, common: dict, echonet_hosts) -> DeviceEndpoint:
    twin = portfolio.twin
    if _twin_protocol(twin, charger) == "echonet":
        settings = {
            **common,
            "host": str(next(echonet_hosts)),
            "port": twin.echonet_port,
            "timeout_s": twin.modbus_timeout_s,
            "rated_power_kw": max(charger.charge_power_kw, charger.discharge_power_kw),
        }
        return DeviceEndpoint(charger.id, "charger", "echonet", "echonet_v2h", settings, True)
    settings = {
        **common,
        "charge_point_id": charger.id,
        "failsafe_kw": charger_failsafe_kw(portfolio, charger),
        "v2x": "vendor" if charger.bidirectional else "none",
        "timeout_s": twin.mqtt_timeout_s,
        "id_tags": ocpp_id_tags(portfolio),
    }
    return DeviceEndpoint(charger.id, "charger", "ocpp", "ocpp", settings, True)


ECHONET_DEFAULT: dict[AssetType, str] = {
    "grid": "echonet_meter",
    "load": "echonet_meter",
    "shelter": "echonet_meter",
    "pv": "echonet_pv",
    "battery": "echonet_battery",
    "charger": "echonet_v2h",
}


def _configured(portfolio: Portfolio, asset_id: str, asset_type: AssetType, drv: Any, common: dict) -> DeviceEndpoint:
    """A real device: its config ``driver`` table (by ``kind``) to a driver and its settings."""
    return CONFIGURED[drv.kind](portfolio, asset_id, asset_type, drv, common)


def _ocpp_endpoint(
    portfolio: Portfolio, asset_id: str, asset_type: AssetType, drv: Any, common: dict
) -> DeviceEndpoint:
    charger = next(c for c in portfolio.chargers if c.id == asset_id)
    settings = {
        **common,
        **drv.model_dump(exclude={"kind"}),
        "failsafe_kw": charger_failsafe_kw(portfolio, charger),
        "id_tags": ocpp_id_tags(portfolio),
    }
    return DeviceEndpoint(asset_id, asset_type, "ocpp", "ocpp", settings, False)


def _echonet_endpoint(
    portfolio: Portfolio, asset_id: str, asset_type: AssetType, drv: Any, common: dict
) -> DeviceEndpoint:
    settings = {**common, **drv.model_dump(exclude={"kind", "model"})}
    return DeviceEndpoint(asset_id, asset_type, "echonet", drv.model or ECHONET_DEFAULT[asset_type], settings, False)


def _mqtt_endpoint(
    portfolio: Portfolio, asset_id: str, asset_type: AssetType, drv: Any, common: dict
) -> DeviceEndpoint:
    settings = {"name": asset_id, "topic_prefix": drv.topic_prefix, "timeout_s": drv.timeout_s}
    if asset_type == "charger":
        settings["bidirectional"] = common.get("bidirectional", False)
        settings["rated_power_kw"] = common.get("rated_power_kw")
    return DeviceEndpoint(
        asset_id, asset_type, "mqtt", drv.model or DEFAULT_DRIVER.get(asset_type, "mqtt_charger"), settings, False
    )


def _modbus_endpoint(
    portfolio: Portfolio, asset_id: str, asset_type: AssetType, drv: Any, common: dict
) -> DeviceEndpoint:
    settings = {
        **common,
        "host": drv.host,
        "port": drv.port,
        "unit_id": drv.unit_id,
        "timeout_s": drv.timeout_s,
        **drv.model_dump(include={"transport", "serial_port", "baudrate", "parity", "stopbits", "word_order"}),
    }
    if drv.tls is not None:
        settings["tls"] = drv.tls.model_dump()
    if drv.register_map == "sunspec":
        return DeviceEndpoint(asset_id, asset_type, "modbus", drv.model or DEFAULT_DRIVER[asset_type], settings, False)
    points = {name: spec.model_dump() for name, spec in portfolio.register_maps[drv.register_map].items()}
    settings.update(map_name=drv.register_map, points=points)
    return DeviceEndpoint(asset_id, asset_type, "modbus", drv.model or "modbus_vendor", settings, False)


# One entry per ``kind`` of a config ``driver`` table (ems/config), other than the twin's "sim".
CONFIGURED: dict[str, Callable[[Portfolio, str, AssetType, Any, dict], DeviceEndpoint]] = {
    "ocpp": _ocpp_endpoint,
    "echonet": _echonet_endpoint,
    "mqtt": _mqtt_endpoint,
    "modbus": _modbus_endpoint,
}


def controller_broker(
    portfolio: Portfolio, config_path: str | Path, host: str | None = None, port: int | None = None
) -> BrokerSettings:
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


def csms_config(portfolio: Portfolio, config_path: str | Path | None):
    """The central system's settings, passwords read from the ``[ocpp]`` credentials file."""
    from drivers.ocpp.credentials import read_passwords
    from drivers.ocpp.csms import CsmsConfig

    ocpp = portfolio.ocpp
    base = Path(config_path).parent if config_path else Path(".")
    passwords = read_passwords(base / ocpp.credentials_file) if ocpp.credentials_file else {}
    return CsmsConfig(
        host=ocpp.host,
        port=ocpp.port,
        security_profile=ocpp.security_profile,
        passwords=passwords,
        id_tags=set(ocpp_id_tags(portfolio)),
        heartbeat_s=ocpp.heartbeat_s,
        cert_file=str(base / ocpp.cert_file) if ocpp.cert_file else None,
        key_file=str(base / ocpp.key_file) if ocpp.key_file else None,
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
    """All configured devices, opened together: read them all, write through the guard.

    Each driver names the shared connections it takes (``needs`` on its class, see
    ``drivers.api.SHARED_CONNECTIONS``); the set opens each one once, for all the drivers that
    need it, and hands it to them.
    """

    def __init__(
        self,
        portfolio: Portfolio,
        broker: BrokerSettings,
        only: set[str] | None = None,
        presence_role: str | None = None,
        config_path: str | Path | None = None,
    ):
        self.portfolio = portfolio
        self.broker = broker
        # With a role (the controller), the client id is held exclusively on the broker: open()
        # raises drivers.mqtt.presence.AlreadyRunning if another process holds it.
        self.presence_role = presence_role
        self.config_path = Path(config_path) if config_path else None
        self.endpoints = [e for e in endpoints(portfolio) if only is None or e.asset_id in only]
        self.guard = WriteGuard(portfolio)
        self.link: MqttLink | None = None  # the MQTT link, when a driver needs it
        self.csms: CentralSystem | None = None  # the OCPP central system, when a charger speaks OCPP
        self.echonet: EchonetClient | None = None  # the ECHONET Lite socket, when a device speaks it
        self.drivers: dict[str, Writable] = {}

    def _needs(self) -> dict[str, frozenset[str]]:
        """Device id -> the shared connections its driver takes; an unknown driver names the device."""
        found = {}
        for endpoint in self.endpoints:
            try:
                found[endpoint.asset_id] = registry.needs(endpoint.driver)
            except KeyError as error:
                raise DeviceConfigError(endpoint.asset_id, endpoint.driver, error) from None
        return found

    def _shared(self, need: str) -> Any:
        """The shared connection ``need``, opened on first use (the MQTT link is opened by open())."""
        if need == "csms" and self.csms is None:
            from drivers.ocpp.csms import CentralSystem

            self.csms = CentralSystem(csms_config(self.portfolio, self.config_path))
        if need == "echonet" and self.echonet is None:
            from drivers.echonet.client import EchonetClient

            net = self.portfolio.echonet
            self.echonet = EchonetClient(net.bind_host, net.bind_port, net.multicast_interface)
        return {"link": self.link, "csms": self.csms, "echonet": self.echonet}[need]

    async def open(self, connect_timeout_s: float | None = None) -> None:
        """Build the drivers; wait for the broker at most as long as the MQTT devices' timeout."""
        needs = self._needs()

        def timeouts_s(need: str) -> list[float]:
            return [e.settings["timeout_s"] for e in self.endpoints if need in needs[e.asset_id]]

        link_timeouts = timeouts_s("link")
        ocpp_wait_s = connect_timeout_s or max(timeouts_s("csms"), default=0.0)
        connect_timeout_s = connect_timeout_s or max(link_timeouts, default=0.0)
        if link_timeouts and self.presence_role is not None:
            await asyncio.to_thread(check_absent, self.broker, max(connect_timeout_s, 1.0))
            will, birth = presence_wills(self.broker.client_id, self.presence_role)
            self.link = MqttLink(self.broker, will=will, birth=birth)
        elif link_timeouts:
            self.link = MqttLink(self.broker)
        for endpoint in self.endpoints:
            try:
                driver = registry.create(
                    endpoint.driver,
                    endpoint.settings,
                    **{need: self._shared(need) for need in sorted(needs[endpoint.asset_id])},
                )
            except (ValidationError, KeyError, ValueError) as error:
                raise DeviceConfigError(endpoint.asset_id, endpoint.driver, error) from None
            await driver.connect()
            self.drivers[endpoint.asset_id] = driver
        if self.csms is not None:
            if not await self.csms.wait_reported(ocpp_wait_s):
                log.warning(
                    "OCPP charge points not connected yet: %s; they read as missing until they connect",
                    ", ".join(self.csms.silent()),
                )
        if self.link is not None:
            self.link.start()
            if not await asyncio.to_thread(self.link.wait_connected, connect_timeout_s):
                log.warning(
                    "MQTT broker %s:%d not reachable yet (%s); MQTT devices will read as missing",
                    self.broker.host,
                    self.broker.port,
                    self.link.last_error or "no answer",
                )

    async def close(self) -> None:
        for driver in self.drivers.values():
            await driver.close()
        if self.link is not None:
            self.link.stop()
        if self.csms is not None:
            await self.csms.stop()
        if self.echonet is not None:
            self.echonet.close()

    async def read_all(self) -> list[Reading]:
        return list(await asyncio.gather(*(d.read() for d in self.drivers.values())))

    async def write(self, device: str, setpoint_kw: float) -> Ack:
        """Clamp ``setpoint_kw`` with the guard (refusing read-only devices), then write it."""
        driver = self.drivers[device]
        reading = await driver.read()
        decision = self.guard.check(device, setpoint_kw, reading)
        return await driver.write(decision.allowed_kw)
