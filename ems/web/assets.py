"""The portfolio as the pages show it: every asset with its site, kind and ratings, every device
with its protocol and address, and the local day a page covers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class AssetInfo:
    id: str
    site: str
    kind: str  # grid, pv, load, battery, charger, vehicle
    capacity_kwh: float | None = None
    driver: object = None


def asset_index(portfolio) -> dict[str, AssetInfo]:
    """Every asset by id. A vehicle belongs to its home charger's site (the depot without one)."""
    found: dict[str, AssetInfo] = {}
    for kind, items in (
        ("grid", portfolio.grid_connections),
        ("pv", portfolio.pv_arrays),
        ("load", portfolio.loads),
        ("battery", portfolio.batteries),
        ("charger", portfolio.chargers),
    ):
        for item in items:
            found[item.id] = AssetInfo(item.id, item.site, kind, getattr(item, "capacity_kwh", None), item.driver)
    charger_site = {c.id: c.site for c in portfolio.chargers}
    depot = portfolio.portfolio.depot_site or (portfolio.sites[0].id if portfolio.sites else "")
    for vehicle in portfolio.vehicles:
        site = charger_site.get(vehicle.home_charger or "", depot)
        found[vehicle.id] = AssetInfo(vehicle.id, site, "vehicle", vehicle.battery_kwh, vehicle.driver)
    return found


def address(driver) -> tuple[str, str]:
    """(protocol, address) of a device's driver table, as an operator would look for it."""
    kind = getattr(driver, "kind", "sim")
    if kind == "modbus":
        if driver.transport == "rtu":
            return "modbus-rtu", f"{driver.serial_port} unit {driver.unit_id}"
        return ("modbus-tls" if driver.tls else "modbus"), f"{driver.host}:{driver.port} unit {driver.unit_id}"
    if kind == "mqtt":
        return "mqtt", f"{driver.topic_prefix}/#"
    if kind == "ocpp":
        return "ocpp", f"{driver.charge_point_id} connector {driver.connector}"
    if kind == "echonet":
        return "echonet", f"{driver.host}:{driver.port} instance {driver.instance}"
    return "sim", "digital twin"


def local_day(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Local midnight of the day ``now`` falls in."""
    return dt.datetime.combine(now.astimezone(zone).date(), dt.time(0), zone)


def iso(time: dt.datetime | None, zone: ZoneInfo) -> str | None:
    return time.astimezone(zone).isoformat(timespec="seconds") if time is not None else None
