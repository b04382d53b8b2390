"""The write guard, the driver registry, and a vendor register map declared in the config."""

from __future__ import annotations

import asyncio
import logging
import tomllib

import pytest
from pydantic import ValidationError

from drivers import registry
from drivers.api import Quality, Reading, utc_now
from drivers.modbus.vendor import VendorPoint
from drivers.sim.devices import VendorBatteryDevice
from drivers.sim.modbus_server import ModbusDeviceServer
from drivers.sim.physics import SimBattery
from ems.config import load_portfolio, parse_portfolio
from ems.devices import DeviceSet, controller_broker, endpoints
from ems.guard import SetpointRefused, WriteGuard
from tests.conftest import REPO, free_port

CONFIG = REPO / "config/arao.toml"


@pytest.fixture(scope="module")
def guard() -> WriteGuard:
    return WriteGuard(load_portfolio(CONFIG))


def reading(device: str, **values) -> Reading:
    return Reading(device=device, time=utc_now(), quality=Quality.GOOD, **values)


@pytest.mark.parametrize("requested, allowed", [(80.0, 50.0), (-80.0, -50.0), (20.0, 20.0), (-49.5, -49.5)])
def test_battery_setpoints_are_clamped_at_its_ratings(guard, requested, allowed):
    assert guard.check("city_hall_bess", requested, reading("city_hall_bess", soc_fraction=0.5)).allowed_kw == allowed


def test_battery_at_its_soc_limits_may_only_go_the_other_way(guard):
    empty = reading("city_hall_bess", soc_fraction=0.10)
    full = reading("city_hall_bess", soc_fraction=0.95)
    assert guard.check("city_hall_bess", 30.0, empty).allowed_kw == 0.0
    assert guard.check("city_hall_bess", -30.0, empty).allowed_kw == -30.0
    assert guard.check("city_hall_bess", -30.0, full).allowed_kw == 0.0
    assert guard.check("city_hall_bess", 30.0, full).allowed_kw == 30.0


def test_charger_limits_follow_the_plugged_vehicle(guard, caplog):
    caplog.set_level(logging.INFO)
    plugged_v2g = reading("depot_c01", plugged=True, vehicle_id="taxi-01", soc_fraction=0.5)
    plugged_no_v2g = reading("depot_c11", plugged=True, vehicle_id="taxi-11", soc_fraction=0.5)
    assert guard.check("depot_c01", 9.0, plugged_v2g).allowed_kw == 6.0
    assert guard.check("depot_c01", -9.0, plugged_v2g).allowed_kw == -6.0
    assert guard.check("depot_c11", 5.0, plugged_no_v2g).allowed_kw == 0.0  # charger and taxi-11 are charge-only
    assert guard.check("depot_c01", -5.0, reading("depot_c01", plugged=False)).allowed_kw == 0.0
    full = reading("depot_c01", plugged=True, vehicle_id="taxi-01", soc_fraction=0.96)
    assert guard.check("depot_c01", -5.0, full).allowed_kw == 0.0
    assert guard.check("depot_c01", 5.0, None).allowed_kw == 0.0  # unknown plug state: no discharge
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "depot_c11: set-point 5.00 kW clamped to 0.00 kW" in messages and "does not allow V2G" in messages
    assert "no vehicle plugged" in messages


@pytest.mark.parametrize("device", ["city_hall_pv", "city_hall_grid", "city_hall_load", "taxi-01", "north_school_gym"])
def test_read_only_devices_are_refused_and_logged(guard, device, caplog):
    with pytest.raises(SetpointRefused, match="not writable"):
        guard.check(device, 1.0)
    assert any(device in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


def test_unknown_device_and_non_finite_setpoints_are_refused(guard):
    with pytest.raises(SetpointRefused, match="no such device"):
        guard.check("nowhere", 1.0)
    with pytest.raises(SetpointRefused, match="not a finite number"):
        guard.check("city_hall_bess", float("nan"))


# --- registry ---------------------------------------------------------------------------------


def test_registry_lists_drivers_and_rejects_duplicates():
    assert {
        "sunspec_inverter",
        "sunspec_meter",
        "sunspec_battery",
        "modbus_vendor",
        "mqtt_charger",
        "mqtt_vehicle",
        "template",
    } <= set(registry.names())
    with pytest.raises(ValueError, match="already registered"):
        registry.register("sunspec_meter")(type("Other", (), {"Settings": VendorPoint}))
    with pytest.raises(KeyError, match="unknown driver 'nope'"):
        registry.driver_class("nope")


def test_registry_validates_a_mapping_into_typed_settings():
    with pytest.raises(ValidationError, match="port"):
        registry.create("sunspec_meter", {"name": "m", "host": "127.0.0.1", "port": "not a port"})
    with pytest.raises(ValidationError, match="needs a 'power_kw' point"):
        registry.create("modbus_vendor", {"name": "v", "host": "127.0.0.1", "points": {"energy_kwh": {"address": 1}}})


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry as before its first use, with any driver registered here discarded after."""
    import sys

    import drivers

    registry.names()  # the built-in drivers, loaded once
    monkeypatch.setattr(registry, "_DRIVERS", dict(registry._DRIVERS))
    monkeypatch.setattr(registry, "_LOADED", False)
    before = set(sys.modules)
    yield drivers
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_registry_finds_a_driver_module_added_anywhere_under_drivers(tmp_path, monkeypatch, fresh_registry):
    """No list of modules to keep: a new module under drivers/ (in a new subpackage too) is found."""
    package = tmp_path / "acme"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = (REPO / "drivers" / "template.py").read_text(encoding="utf-8")
    (package / "meter.py").write_text(source.replace('register("template")', 'register("acme_meter")'))
    monkeypatch.setattr(fresh_registry, "__path__", [*fresh_registry.__path__, str(tmp_path)])
    assert "drivers.acme.meter" in registry.builtin_modules(fresh_registry.__path__, "drivers.")
    assert not any(m.startswith("drivers.sim.") for m in registry.builtin_modules(fresh_registry.__path__, "drivers."))
    assert "acme_meter" in registry.names()
    built = registry.create("acme_meter", {"name": "m1", "fixed_power_kw": 2.5})
    assert asyncio.run(built.read()).power_kw == 2.5


def test_registry_skips_a_module_whose_optional_dependency_is_absent_but_not_a_broken_one(
    tmp_path, monkeypatch, fresh_registry
):
    (tmp_path / "needs_extra.py").write_text("import arao_not_installed_extra\n")
    monkeypatch.setattr(fresh_registry, "__path__", [*fresh_registry.__path__, str(tmp_path)])
    assert "template" in registry.names()  # the optional module is skipped, the others load
    (tmp_path / "broken.py").write_text("import drivers.no_such_module\n")
    monkeypatch.setattr(registry, "_LOADED", False)
    with pytest.raises(ModuleNotFoundError, match="drivers.no_such_module"):
        registry.names()


def test_registry_refuses_needs_it_cannot_meet():
    from drivers.template import TemplateSettings

    class Unknown:
        Settings = TemplateSettings
        needs = frozenset({"bus"})

    class NotTaken:
        Settings = TemplateSettings
        needs = frozenset({"link"})

        def __init__(self, settings):
            pass

    with pytest.raises(TypeError, match="driver 'odd_bus' needs unknown shared connection.*'bus'"):
        registry.register("odd_bus")(Unknown)
    with pytest.raises(
        TypeError, match="driver 'odd_link' needs \\['link'\\] but its constructor takes no such argument"
    ):
        registry.register("odd_link")(NotTaken)
    assert "odd_bus" not in registry.names() and "odd_link" not in registry.names()


def test_each_driver_declares_the_shared_connection_of_its_protocol():
    """The needs replace the protocol names DeviceSet used to branch on: the same wiring."""
    by_protocol = {"mqtt": {"link"}, "ocpp": {"csms"}, "echonet": {"echonet"}, "modbus": set()}
    for name, protocol in [
        ("mqtt_charger", "mqtt"),
        ("mqtt_vehicle", "mqtt"),
        ("ocpp", "ocpp"),
        ("echonet_v2h", "echonet"),
        ("echonet_meter", "echonet"),
        ("echonet_pv", "echonet"),
        ("echonet_battery", "echonet"),
        ("sunspec_meter", "modbus"),
        ("sunspec_inverter", "modbus"),
        ("sunspec_battery", "modbus"),
        ("modbus_vendor", "modbus"),
        ("template", "modbus"),
    ]:
        assert registry.needs(name) == by_protocol[protocol], name


def test_an_unknown_driver_names_the_device_before_anything_opens():
    from ems.devices import DeviceConfigError

    portfolio = load_portfolio(CONFIG)
    devices = DeviceSet(portfolio, controller_broker(portfolio, CONFIG), only={"city_hall_bess", "depot_c01"})
    devices.endpoints[-1] = devices.endpoints[-1].__class__(**{**devices.endpoints[-1].__dict__, "driver": "acme_x"})
    with pytest.raises(
        DeviceConfigError, match=f"device '{devices.endpoints[-1].asset_id}' \\(driver 'acme_x'\\): .*unknown driver"
    ):
        asyncio.run(devices.open(connect_timeout_s=0.1))
    assert devices.link is None and devices.drivers == {}


def test_every_kind_of_config_driver_table_has_its_endpoint_builder():
    import typing

    from ems.config.schema import Driver
    from ems.devices import CONFIGURED

    kinds = {
        typing.get_args(cls.model_fields["kind"].annotation)[0] for cls in typing.get_args(typing.get_args(Driver)[0])
    }
    assert kinds - {"sim"} == set(CONFIGURED)


def test_each_driver_says_where_its_device_is_reached():
    portfolio = load_portfolio(CONFIG)
    served = portfolio.model_copy(
        update={"twin": portfolio.twin.model_copy(update={"chargers": "ocpp", "v2h": "echonet"})}
    )
    where = {e.asset_id: e.where for e in endpoints(served)}
    port = served.twin.modbus_base_port
    assert where["city_hall_bess"].startswith(f"modbus://{served.twin.modbus_host}:") and where[
        "city_hall_bess"
    ].endswith("/1")
    assert where[served.grid_connections[0].id] == f"modbus://{served.twin.modbus_host}:{port}/1"
    assert where[served.vehicles[0].id] == f"mqtt:{served.twin.topic_root}/{served.vehicles[0].id}"
    v2h = next(c for c in served.chargers if c.v2h)
    other = next(c for c in served.chargers if not c.v2h)
    assert where[v2h.id].startswith("echonet://") and where[v2h.id].endswith(f":{served.twin.echonet_port}/1")
    assert where[other.id] == f"ocpp:{other.id}#1"


def test_every_device_of_the_reference_portfolio_builds():
    portfolio = load_portfolio(CONFIG)
    built = DeviceSet(portfolio, controller_broker(portfolio, CONFIG))
    from drivers.mqtt.link import MqttLink

    link = MqttLink(built.broker)
    drivers = [
        registry.create(e.driver, e.settings, **({"link": link} if e.protocol == "mqtt" else {}))
        for e in built.endpoints
    ]
    assert len(drivers) == 53
    writable = sorted(d.name for d in drivers if d.writable)
    assert writable == sorted([b.id for b in portfolio.batteries] + [c.id for c in portfolio.chargers])


# --- a vendor register map declared in the config ---------------------------------------------

ACME_MAP = {
    "power_kw": {"address": 100, "type": "int16", "scale": 0.1},
    "soc_percent": {"address": 101, "type": "uint16", "scale": 0.1},
    "energy_kwh": {"address": 102, "type": "uint32", "scale": 0.01, "table": "input"},
    "setpoint_kw": {"address": 110, "type": "int16", "scale": 0.1, "writable": True},
}


def vendor_portfolio(port: int):
    raw = tomllib.loads(CONFIG.read_text())
    raw["register_maps"] = {"acme": ACME_MAP}
    raw["batteries"][2]["driver"] = {
        "kind": "modbus",
        "host": "127.0.0.1",
        "port": port,
        "register_map": "acme",
        "timeout_s": 0.5,
    }
    return parse_portfolio(raw, CONFIG)


def test_vendor_map_from_the_config_reads_and_writes():
    port = free_port()
    portfolio = vendor_portfolio(port)
    endpoint = next(e for e in endpoints(portfolio) if e.asset_id == "shelter_north_bess")
    assert endpoint.driver == "modbus_vendor" and not endpoint.simulated
    battery = SimBattery("shelter_north_bess", 20.0, 10.0, 10.0, soc_kwh=14.0)
    battery.energy.import_kwh = 321.45
    served = VendorBatteryDevice(battery, {k: VendorPoint(**v) for k, v in ACME_MAP.items()})

    async def scenario():
        server = ModbusDeviceServer("acme", served.store, port=port)
        await server.start()
        devices = DeviceSet(portfolio, controller_broker(portfolio, CONFIG), {"shelter_north_bess"})
        await devices.open()
        try:
            before = (await devices.read_all())[0]
            ack = await devices.write("shelter_north_bess", -25.0)  # the guard clamps at the 10 kW rating
            after = (await devices.read_all())[0]
            await server.stop()
            gone = (await devices.read_all())[0]
            return before, ack, after, gone
        finally:
            await devices.close()

    before, ack, after, gone = asyncio.run(scenario())
    assert before.quality is Quality.GOOD
    assert before.soc_fraction == pytest.approx(0.7) and before.energy_kwh == pytest.approx(321.45)
    assert ack.applied_kw == pytest.approx(-10.0)
    assert battery.setpoint_kw == pytest.approx(-10.0)
    assert served.store.writes == [(110, [0xFF9C])]  # -100 raw = -10.0 kW at 0.1 kW per bit
    assert after.power_kw == pytest.approx(-10.0) and after.setpoint_kw == pytest.approx(-10.0)
    assert gone.quality is Quality.MISSING


def test_a_register_map_with_unknown_point_names_is_a_config_error():
    raw = tomllib.loads(CONFIG.read_text())
    raw["register_maps"] = {"acme": {**ACME_MAP, "volts": {"address": 5}}}
    raw["batteries"][2]["driver"] = {"kind": "modbus", "host": "127.0.0.1", "register_map": "acme"}
    portfolio = parse_portfolio(raw, CONFIG)  # the schema accepts any names; the driver checks them
    endpoint = next(e for e in endpoints(portfolio) if e.asset_id == "shelter_north_bess")
    with pytest.raises(ValidationError, match="unknown point names \\['volts'\\]"):
        registry.create(endpoint.driver, endpoint.settings)
