"""OCPP: the controller's central system against charge points written here with the ``ocpp``
package's own client classes (1.6 and 2.0.1), not the project's twin."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json

import pandas as pd
import pytest
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action
from ocpp.v21 import ChargePoint as Cp21
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from drivers.api import DeviceUnavailable, Quality
from ems.config import load_portfolio
from ems.config.drivers import OcppDriver
from ems.control.setpoints import plan_targets
from ems.devices import DeviceSet, controller_broker
from tests.conftest import REPO, free_port

CONFIG = REPO / "config/arao.toml"
NOW = dt.datetime(2026, 4, 15, 1, 0, tzinfo=dt.UTC)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def ocpp_portfolio(tmp_path, version_ids: dict[str, str], rate_unit: str = "W"):
    """The reference portfolio with chargers named by OCPP charge point ids, profile 1 passwords."""
    passwords = tmp_path / "ocpp-passwords"
    passwords.write_text("".join(f"{cp}:secret-{cp}\n" for cp in version_ids.values()))
    portfolio = load_portfolio(CONFIG)
    chargers = tuple(
        c.model_copy(
            update={
                "driver": OcppDriver(kind="ocpp", charge_point_id=version_ids[c.id], rate_unit=rate_unit, timeout_s=3.0)
            }
        )
        if c.id in version_ids
        else c
        for c in portfolio.chargers
    )
    ocpp = portfolio.ocpp.model_copy(
        update={"port": free_port(), "security_profile": 1, "credentials_file": str(passwords)}
    )
    return portfolio.model_copy(update={"chargers": chargers, "ocpp": ocpp})


def auth(cp_id: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{cp_id}:{password}".encode()).decode()}


class Charger16(Cp16):
    """A 1.6 charge point that keeps every charging profile it is sent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.profiles: list[dict] = []
        self.cleared: list[dict] = []
        self.got_profile = asyncio.Event()

    @on(Action.set_charging_profile)
    def on_profile(self, connector_id, cs_charging_profiles, **_):
        self.profiles.append(cs_charging_profiles)
        if cs_charging_profiles["charging_profile_purpose"] == "TxProfile":
            self.got_profile.set()
        return result16.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear(self, **criteria):
        self.cleared.append(criteria)
        return result16.ClearChargingProfile(status="Accepted")

    async def session(self, tag: str, power_w: float, soc: float) -> int:
        boot = await self.call(call16.BootNotification(charge_point_model="Test-DC", charge_point_vendor="Test"))
        assert boot.status == "Accepted"
        await self.call(call16.Heartbeat())
        await self.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
        assert (await self.call(call16.Authorize(id_tag=tag))).id_tag_info["status"] == "Accepted"
        started = await self.call(
            call16.StartTransaction(connector_id=1, id_tag=tag, meter_start=120_000, timestamp=now_iso())
        )
        await self.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        await self.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=started.transaction_id,
                meter_value=[
                    {
                        "timestamp": now_iso(),
                        "sampled_value": [
                            {"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"},
                            {"value": "121.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                            {"value": str(soc), "measurand": "SoC", "unit": "Percent"},
                        ],
                    }
                ],
            )
        )
        return started.transaction_id


async def connect(url: str, subprotocol: str, headers: dict):
    return await websockets.connect(url, subprotocols=[subprotocol], additional_headers=headers, open_timeout=3)


async def listening(devices: DeviceSet) -> None:
    """Until the central system the device set opens accepts connections."""
    for _ in range(200):
        if devices.csms is not None and devices.csms._server is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the central system did not start")


def plan_for(vehicle: str, power_kw: float) -> pd.DataFrame:
    index = pd.date_range(NOW - dt.timedelta(minutes=15), periods=4, freq="30min")
    return pd.DataFrame({vehicle: [power_kw] * 4}, index=index)


def test_a_16_charge_point_boots_reports_and_gets_the_plans_setpoint(tmp_path):
    portfolio = ocpp_portfolio(tmp_path, {"depot_c01": "CP-DEPOT-01"})

    async def scenario():
        devices = DeviceSet(
            portfolio, controller_broker(portfolio, CONFIG), {"depot_c01"}, config_path=tmp_path / "site.toml"
        )
        opening = asyncio.create_task(devices.open())
        await listening(devices)
        url = f"ws://127.0.0.1:{portfolio.ocpp.port}/CP-DEPOT-01"
        async with await connect(url, "ocpp1.6", auth("CP-DEPOT-01", "secret-CP-DEPOT-01")) as ws:
            cp = Charger16("CP-DEPOT-01", ws)
            listener = asyncio.create_task(cp.start())
            transaction = await cp.session("taxi-01", power_w=3200.0, soc=41.0)
            await opening
            reading = await devices.drivers["depot_c01"].read()
            targets = plan_targets(
                plan_for("taxi-01", -4.5), NOW, {"taxi-01": reading.vehicle_id and "depot_c01"}, set(), {"depot_c01"}
            )
            ack = await devices.write("depot_c01", targets["depot_c01"])
            await asyncio.wait_for(cp.got_profile.wait(), 2)
            after = await devices.drivers["depot_c01"].read()
            listener.cancel()
        await asyncio.sleep(0.1)
        gone = await devices.drivers["depot_c01"].read()
        await devices.close()
        return cp, transaction, reading, ack, after, gone

    cp, transaction, reading, ack, after, gone = asyncio.run(scenario())
    assert reading.quality is Quality.GOOD and reading.plugged and reading.vehicle_id == "taxi-01"
    assert (
        reading.power_kw == pytest.approx(-3.2)
        and reading.energy_kwh == pytest.approx(121.5)
        and reading.soc_fraction == pytest.approx(0.41)
    )
    # on connection: our profiles cleared, failsafe (charge at 3 kW) installed as the default
    assert cp.cleared and cp.profiles[0]["charging_profile_purpose"] == "TxDefaultProfile"
    assert cp.profiles[0]["charging_schedule"]["charging_schedule_period"][0]["limit"] == pytest.approx(3000.0)
    tx = next(p for p in cp.profiles if p["charging_profile_purpose"] == "TxProfile")
    assert tx["transaction_id"] == transaction
    assert tx["charging_schedule"]["charging_rate_unit"] == "W"
    assert tx["charging_schedule"]["charging_schedule_period"][0]["limit"] == pytest.approx(4500.0)
    assert ack.applied_kw == pytest.approx(-4.5) and after.setpoint_kw == pytest.approx(-4.5)
    assert gone.quality is Quality.MISSING and "not connected" in gone.error


class Charger201(Cp201):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.profiles: list[tuple[int, dict]] = []
        self.got_profile = asyncio.Event()

    @on("SetChargingProfile")
    def on_profile(self, evse_id, charging_profile, **_):
        self.profiles.append((evse_id, charging_profile))
        if charging_profile["charging_profile_purpose"] == "TxProfile":
            self.got_profile.set()
        return result201.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear(self, **_):
        return result201.ClearChargingProfile(status="Accepted")


def test_a_201_charge_point_does_the_same_in_amperes_and_discharge_is_refused(tmp_path):
    portfolio = ocpp_portfolio(tmp_path, {"depot_c02": "CP-DEPOT-02"}, rate_unit="A")
    portfolio = portfolio.model_copy(
        update={
            "chargers": tuple(
                c.model_copy(update={"discharge_power_kw": 6.0}) if c.id == "depot_c02" else c
                for c in portfolio.chargers
            )
        }
    )
    vehicles = tuple(v.model_copy(update={"v2g_allowed": True}) for v in portfolio.vehicles)
    portfolio = portfolio.model_copy(update={"vehicles": vehicles})

    async def scenario():
        devices = DeviceSet(
            portfolio, controller_broker(portfolio, CONFIG), {"depot_c02"}, config_path=tmp_path / "site.toml"
        )
        opening = asyncio.create_task(devices.open())
        await listening(devices)
        url = f"ws://127.0.0.1:{portfolio.ocpp.port}/CP-DEPOT-02"
        async with await connect(url, "ocpp2.0.1", auth("CP-DEPOT-02", "secret-CP-DEPOT-02")) as ws:
            cp = Charger201("CP-DEPOT-02", ws)
            listener = asyncio.create_task(cp.start())
            boot = await cp.call(
                call201.BootNotification(charging_station={"model": "Test-AC", "vendor_name": "Test"}, reason="PowerUp")
            )
            assert boot.status == "Accepted"
            await cp.call(
                call201.StatusNotification(timestamp=now_iso(), connector_status="Occupied", evse_id=1, connector_id=1)
            )
            started = await cp.call(
                call201.TransactionEvent(
                    event_type="Started",
                    timestamp=now_iso(),
                    trigger_reason="Authorized",
                    seq_no=0,
                    transaction_info={"transaction_id": "tx-77"},
                    evse={"id": 1, "connector_id": 1},
                    id_token={"id_token": "taxi-02", "type": "Local"},
                )
            )
            await cp.call(
                call201.MeterValues(
                    evse_id=1,
                    meter_value=[
                        {
                            "timestamp": now_iso(),
                            "sampled_value": [
                                {"value": 5.5, "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "kW"}},
                                {"value": 63.0, "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}},
                            ],
                        }
                    ],
                )
            )
            await opening
            reading = await devices.drivers["depot_c02"].read()
            await devices.write("depot_c02", -4.8)
            await asyncio.wait_for(cp.got_profile.wait(), 2)
            with pytest.raises(DeviceUnavailable, match="OCPP 2.0.1 has no discharge"):
                await devices.write("depot_c02", 2.0)
            unknown = await cp.call(call201.Authorize(id_token={"id_token": "stranger", "type": "Local"}))
            listener.cancel()
        await devices.close()
        return cp, started, reading, unknown

    cp, started, reading, unknown = asyncio.run(scenario())
    assert started.id_token_info["status"] == "Accepted" and unknown.id_token_info["status"] == "Invalid"
    assert reading.plugged and reading.vehicle_id == "taxi-02"
    assert reading.power_kw == pytest.approx(-5.5) and reading.soc_fraction == pytest.approx(0.63)
    evse, tx = next((e, p) for e, p in cp.profiles if p["charging_profile_purpose"] == "TxProfile")
    assert evse == 1 and tx["transaction_id"] == "tx-77"
    schedule = tx["charging_schedule"][0]
    assert schedule["charging_rate_unit"] == "A"
    assert schedule["charging_schedule_period"][0]["limit"] == pytest.approx(4800 / (3 * 200.0), abs=0.1)
    assert (
        len([p for _, p in cp.profiles if p["charging_profile_purpose"] == "TxProfile"]) == 1
    )  # the refused discharge sent nothing


def test_wrong_or_missing_password_and_unknown_ids_are_refused_before_any_ocpp(tmp_path):
    portfolio = ocpp_portfolio(tmp_path, {"depot_c03": "CP-DEPOT-03"})

    async def scenario():
        devices = DeviceSet(
            portfolio, controller_broker(portfolio, CONFIG), {"depot_c03"}, config_path=tmp_path / "site.toml"
        )
        opening = asyncio.create_task(devices.open(connect_timeout_s=0.2))
        await listening(devices)
        base = f"ws://127.0.0.1:{portfolio.ocpp.port}"
        statuses = []
        for path, headers in (
            (f"{base}/CP-DEPOT-03", auth("CP-DEPOT-03", "guess")),
            (f"{base}/CP-DEPOT-03", {}),
            (f"{base}/CP-DEPOT-03", auth("CP-OTHER", "secret-CP-DEPOT-03")),
            (f"{base}/CP-UNKNOWN", auth("CP-UNKNOWN", "x")),
        ):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await connect(path, "ocpp1.6", headers)
            statuses.append(refused.value.response.status_code)
        await opening
        reading = await devices.drivers["depot_c03"].read()
        refusals = list(devices.csms.refused)
        await devices.close()
        return statuses, reading, refusals

    statuses, reading, refusals = asyncio.run(scenario())
    assert statuses == [401, 401, 401, 404]
    assert reading.quality is Quality.MISSING
    assert (
        refusals[0] == "CP-DEPOT-03: wrong or missing password"
        and refusals[-1] == "CP-UNKNOWN: unknown charge point id"
    )


def test_a_charge_point_that_returns_gets_its_failsafe_again(tmp_path):
    portfolio = ocpp_portfolio(tmp_path, {"depot_c04": "CP-DEPOT-04"})

    async def connect_once(url, headers):
        async with await connect(url, "ocpp1.6", headers) as ws:
            cp = Charger16("CP-DEPOT-04", ws)
            listener = asyncio.create_task(cp.start())
            await cp.call(call16.BootNotification(charge_point_model="Test", charge_point_vendor="Test"))
            await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
            await asyncio.sleep(0.3)
            listener.cancel()
            return cp

    async def scenario():
        devices = DeviceSet(
            portfolio, controller_broker(portfolio, CONFIG), {"depot_c04"}, config_path=tmp_path / "site.toml"
        )
        await devices.open(connect_timeout_s=0.1)
        url, headers = f"ws://127.0.0.1:{portfolio.ocpp.port}/CP-DEPOT-04", auth("CP-DEPOT-04", "secret-CP-DEPOT-04")
        first = await connect_once(url, headers)
        await asyncio.sleep(0.1)
        missing = await devices.drivers["depot_c04"].read()
        with pytest.raises(DeviceUnavailable, match="not connected"):
            await devices.drivers["depot_c04"].write(-3.0)
        second = await connect_once(url, headers)
        await devices.close()
        return first, missing, second, devices.csms.sessions["CP-DEPOT-04"].connections

    first, missing, second, connections = asyncio.run(scenario())
    assert missing.quality is Quality.MISSING and connections == 2
    for cp in (first, second):
        assert cp.cleared[0]["charging_profile_purpose"] == "TxProfile"
        assert cp.profiles[0]["charging_profile_purpose"] == "TxDefaultProfile" and cp.profiles[0]["stack_level"] == 0


class Charger21(Cp21):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.profiles: list[dict] = []
        self.got_profile = asyncio.Event()

    @on("SetChargingProfile")
    def on_profile(self, evse_id, charging_profile, **_):
        self.profiles.append(charging_profile)
        if charging_profile["charging_profile_purpose"] == "TxProfile":
            self.got_profile.set()
        return result21.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear(self, **_):
        return result21.ClearChargingProfile(status="Accepted")


def test_an_ocpp_21_charge_point_is_told_to_discharge_with_a_central_setpoint(tmp_path):
    portfolio = ocpp_portfolio(tmp_path, {"depot_c05": "CP-DEPOT-05"})
    portfolio = portfolio.model_copy(
        update={"vehicles": tuple(v.model_copy(update={"v2g_allowed": True}) for v in portfolio.vehicles)}
    )

    async def scenario():
        devices = DeviceSet(
            portfolio, controller_broker(portfolio, CONFIG), {"depot_c05"}, config_path=tmp_path / "site.toml"
        )
        opening = asyncio.create_task(devices.open())
        await listening(devices)
        url = f"ws://127.0.0.1:{portfolio.ocpp.port}/CP-DEPOT-05"
        async with await connect(url, "ocpp2.1", auth("CP-DEPOT-05", "secret-CP-DEPOT-05")) as ws:
            cp = Charger21("CP-DEPOT-05", ws)
            listener = asyncio.create_task(cp.start())
            await cp.call(
                call21.BootNotification(charging_station={"model": "Test-V2X", "vendor_name": "Test"}, reason="PowerUp")
            )
            await cp.call(
                call21.TransactionEvent(
                    event_type="Started",
                    timestamp=now_iso(),
                    trigger_reason="Authorized",
                    seq_no=0,
                    transaction_info={"transaction_id": "v2x-1"},
                    evse={"id": 1, "connector_id": 1},
                    id_token={"id_token": "taxi-05", "type": "Local"},
                    meter_value=[{"timestamp": now_iso(), "sampled_value": [{"value": 55.0, "measurand": "SoC"}]}],
                )
            )
            await opening
            ack = await devices.write("depot_c05", 4.0)
            await asyncio.wait_for(cp.got_profile.wait(), 2)
            # hostile input on the same connection: the central system answers and carries on
            await ws.send("this is not OCPP")
            await ws.send(json.dumps([2, "x1", "NoSuchAction", {}]))
            await asyncio.sleep(0.2)
            still = await devices.drivers["depot_c05"].read()
            listener.cancel()
        await devices.close()
        return cp, ack, still

    cp, ack, still = asyncio.run(scenario())
    tx = next(p for p in cp.profiles if p["charging_profile_purpose"] == "TxProfile")
    period = tx["charging_schedule"][0]["charging_schedule_period"][0]
    assert period["operation_mode"] == "CentralSetpoint" and period["setpoint"] == pytest.approx(-4000.0)
    assert ack.applied_kw == pytest.approx(4.0)
    assert still.quality is Quality.GOOD and still.vehicle_id == "taxi-05" and still.setpoint_kw == pytest.approx(4.0)


def test_security_profile_2_takes_the_password_over_tls_only(tmp_path):
    import ssl

    from tests.tls_fixtures import make_certificates

    certs = make_certificates(tmp_path)
    portfolio = ocpp_portfolio(tmp_path, {"depot_c06": "CP-DEPOT-06"})
    portfolio = portfolio.model_copy(
        update={
            "ocpp": portfolio.ocpp.model_copy(
                update={"security_profile": 2, "cert_file": certs["server.crt"], "key_file": certs["server.key"]}
            )
        }
    )
    trust = ssl.create_default_context(cafile=certs["ca.crt"])

    async def scenario():
        devices = DeviceSet(
            portfolio, controller_broker(portfolio, CONFIG), {"depot_c06"}, config_path=tmp_path / "site.toml"
        )
        opening = asyncio.create_task(devices.open())
        await listening(devices)
        port, headers = portfolio.ocpp.port, auth("CP-DEPOT-06", "secret-CP-DEPOT-06")
        with pytest.raises((websockets.InvalidMessage, websockets.InvalidHandshake, OSError, asyncio.TimeoutError)):
            await connect(f"ws://127.0.0.1:{port}/CP-DEPOT-06", "ocpp1.6", headers)  # no TLS: no handshake
        async with websockets.connect(
            f"wss://127.0.0.1:{port}/CP-DEPOT-06",
            subprotocols=["ocpp1.6"],
            additional_headers=headers,
            ssl=trust,
            open_timeout=5,
        ) as ws:
            cp = Charger16("CP-DEPOT-06", ws)
            listener = asyncio.create_task(cp.start())
            await cp.call(call16.BootNotification(charge_point_model="Test", charge_point_vendor="Test"))
            await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
            await opening
            reading = await devices.drivers["depot_c06"].read()
            listener.cancel()
        await devices.close()
        return reading

    reading = asyncio.run(scenario())
    assert reading.quality is Quality.GOOD and reading.plugged is False


@pytest.mark.parametrize(
    "edit, words",
    [
        (
            lambda raw: raw["batteries"][0].update(driver={"kind": "ocpp", "charge_point_id": "X"}),
            r"batteries\[id=city_hall_bess\]\.driver\.kind",
        ),
        (lambda raw: raw.update(ocpp={"security_profile": 1}), r"ocpp\.credentials_file"),
        (
            lambda raw: raw["chargers"][0].update(driver={"kind": "ocpp", "charge_point_id": "bad id!"}),
            r"chargers\[id=depot_c01\]\.driver\.charge_point_id",
        ),
        (
            lambda raw: [c.update(driver={"kind": "ocpp", "charge_point_id": "SAME"}) for c in raw["chargers"][:2]],
            r"'SAME#1' named by two chargers",
        ),
        (
            lambda raw: raw["vehicles"][0].update(driver={"kind": "echonet", "host": "10.0.0.9"}),
            r"vehicles\[id=taxi-01\]\.driver\.kind",
        ),
        (
            lambda raw: raw["batteries"][0].update(driver={"kind": "modbus", "transport": "rtu"}),
            r"driver: .*a Modbus RTU device needs 'serial_port'",
        ),
    ],
)
def test_bad_protocol_settings_stop_before_anything_runs(edit, words):
    import copy
    import tomllib

    from ems.config import ConfigError, parse_portfolio

    raw = copy.deepcopy(tomllib.loads(CONFIG.read_text()))
    edit(raw)
    with pytest.raises(ConfigError, match=words):
        parse_portfolio(raw, CONFIG)


def test_ems_devices_with_a_missing_ocpp_password_file_exits_2_with_one_line(tmp_path):
    import shutil
    import subprocess
    import sys

    config = tmp_path / "site.toml"
    shutil.copytree(REPO / "config/mosquitto", tmp_path / "mosquitto")  # the MQTT credentials files the config names
    config.write_text(
        CONFIG.read_text().replace(
            'id = "depot_c01"\n', 'id = "depot_c01"\ndriver = { kind = "ocpp", charge_point_id = "CP1" }\n', 1
        )
        + '\n[ocpp]\nsecurity_profile = 1\ncredentials_file = "absent-passwords"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "ems", "devices", "--config", str(config), "--only", "depot_c01"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stdout.strip().count("\n") == 0 and "absent-passwords" in result.stdout and "missing" in result.stdout


def test_reported_power_beyond_the_rating_is_out_of_range_and_old_meter_values_are_stale():
    import time

    from drivers.ocpp.csms import CentralSystem, CsmsConfig
    from drivers.ocpp.driver import OcppCharger, OcppSettings

    csms = CentralSystem(CsmsConfig(port=free_port()))
    charger = OcppCharger(OcppSettings(name="c", charge_point_id="CP", rated_power_kw=6.0, stale_after_s=60.0), csms)
    session = csms.sessions["CP"]
    session.connected = True
    state = session.connector(1)
    state.status, state.import_w, state.meter_at = "Charging", 9000.0, time.monotonic()
    beyond = asyncio.run(charger.read())
    state.import_w, state.meter_at = 5000.0, time.monotonic() - 120.0
    old = asyncio.run(charger.read())
    assert beyond.quality is Quality.OUT_OF_RANGE and beyond.power_kw == pytest.approx(-9.0)
    assert old.quality is Quality.STALE and old.power_kw == pytest.approx(-5.0)
