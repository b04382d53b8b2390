"""The digital twin: physics on an injected clock, served over the real protocols, and the
``ems twin`` / ``ems devices`` commands against each other as a user runs them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from drivers.api import Quality
from drivers.sim.clock import ManualClock, ScaledClock
from ems.config import load_portfolio
from ems.devices import DeviceSet, controller_broker, endpoints
from simulations.twin import Twin, TwinOptions
from tests.conftest import REPO, free_port_block

TOKYO = dt.timezone(dt.timedelta(hours=9))
CONFIG = REPO / "config/arao.toml"


def offline_twin(start: dt.datetime) -> tuple[Twin, ManualClock]:
    clock = ManualClock(start)
    return Twin(load_portfolio(CONFIG), CONFIG, TwinOptions(serve_mqtt=False), clock=clock), clock


def advance(twin: Twin, clock: ManualClock, seconds: float, step_s: float = 60.0) -> None:
    for _ in range(int(seconds // step_s)):
        twin.step(clock.advance(step_s), step_s)


def test_vehicles_unplug_for_their_duties_and_return_with_less_energy():
    twin, clock = offline_twin(dt.datetime(2026, 4, 15, 6, 0, tzinfo=TOKYO))
    taxi = twin.vehicles["taxi-01"]  # duty 07:00-12:00, 70 km at 0.15 kWh/km
    assert taxi.charger_id == "depot_c01" and twin.chargers["depot_c01"].vehicle is taxi
    soc_before_kwh = taxi.soc_kwh
    twin.chargers["depot_c01"].apply_setpoint(-6.0)
    advance(twin, clock, 30 * 60)  # 06:30: charging
    charged_kwh = 6.0 * 0.5 * 0.95
    assert taxi.soc_kwh == pytest.approx(soc_before_kwh + charged_kwh)
    advance(twin, clock, 3600)  # 07:30; charging went on until the 07:00 departure
    charged_kwh *= 2
    assert taxi.charger_id is None and twin.chargers["depot_c01"].vehicle is None
    assert twin.chargers["depot_c01"].power_kw == 0.0
    advance(twin, clock, 4.5 * 3600)  # 12:00
    assert taxi.charger_id == "depot_c01"
    assert taxi.soc_kwh == pytest.approx(soc_before_kwh + charged_kwh - 70 * 0.15)
    assert twin.chargers["depot_c01"].setpoint_kw == 0.0  # the new session starts idle


def test_battery_soc_integrates_power_with_efficiency_and_stops_at_its_limit():
    twin, clock = offline_twin(dt.datetime(2026, 4, 15, 0, 0, tzinfo=TOKYO))
    bess = twin.physics["shelter_north_bess"]  # 20 kWh, 10 kW, SoC 0.7, min 0.1
    bess.apply_setpoint(10.0)
    advance(twin, clock, 3600)
    assert bess.soc_kwh == pytest.approx(14.0 - 10.0 / 0.95, rel=1e-6)
    advance(twin, clock, 3 * 3600)
    assert bess.soc_fraction == pytest.approx(0.1, abs=1e-6) and bess.power_kw == pytest.approx(0.0, abs=1e-6)


def test_every_site_balances_to_zero():
    twin, clock = offline_twin(dt.datetime(2026, 4, 15, 12, 0, tzinfo=TOKYO))
    twin.physics["city_hall_bess"].apply_setpoint(-30.0)
    twin.chargers["depot_c03"].apply_setpoint(-6.0)
    advance(twin, clock, 600)
    for site_id, site in twin.sites.items():
        total = sum(m.power_kw for m in site.grid) + sum(d.power_kw for d in site.others)
        assert total == pytest.approx(0.0, abs=1e-9), site_id
    assert twin.physics["city_hall_pv"].power_kw > 30  # noon in April, 60 kWp


def test_scaled_clock_runs_faster_than_real_time():
    start = dt.datetime(2026, 4, 15, tzinfo=TOKYO)
    clock = ScaledClock(start, speed=60.0)
    time.sleep(0.2)
    assert 11.0 <= (clock.now() - start).total_seconds() <= 30.0
    with pytest.raises(ValueError):
        ScaledClock(start.replace(tzinfo=None))


def test_battery_told_to_discharge_reports_it_and_soc_falls(mosquitto, twin_factory):
    portfolio = load_portfolio(CONFIG)
    portfolio = portfolio.model_copy(update={"twin": portfolio.twin.model_copy(update={"step_s": 0.02})})
    clock = ManualClock(dt.datetime(2026, 4, 15, 12, 0, tzinfo=TOKYO))
    runner = twin_factory(CONFIG, mosquitto, clock=clock, portfolio=portfolio)
    served = runner.twin.portfolio  # with the free ports the fixture chose

    async def scenario():
        devices = DeviceSet(
            served, controller_broker(served, CONFIG, mosquitto.host, mosquitto.port), {"city_hall_bess", "depot_c01"}
        )
        await devices.open()
        try:
            before = (await devices.read_all())[0]
            ack = await devices.write("city_hall_bess", 20.0)
            clamped = await devices.write("depot_c01", -11.0)
            target = clock.advance(1800)
            while runner.twin.last_step is None or runner.twin.last_step < target:
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.2)  # one telemetry period of the twin
            return before, ack, clamped, await devices.read_all()
        finally:
            await devices.close()

    before, ack, clamped, (bess, charger) = asyncio.run(scenario())
    assert before.quality is Quality.GOOD and before.soc_fraction == pytest.approx(0.5, abs=0.001)
    assert ack.applied_kw == pytest.approx(20.0)
    assert bess.power_kw == pytest.approx(20.0)
    # half an hour at 20 kW out of 120 kWh at 95 %: 10.53 kWh, 8.8 % of capacity
    assert bess.soc_fraction == pytest.approx(0.5 - 10.0 / 0.95 / 120.0, abs=0.0015)
    assert clamped.applied_kw == pytest.approx(-6.0)  # the guard held it at the 6 kW rating
    assert charger.power_kw == pytest.approx(-6.0) and charger.plugged is True


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ems", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def test_ems_twin_and_ems_devices_from_the_command_line(mosquitto, tmp_path):
    base = free_port_block(30)
    config = tmp_path / "arao.toml"
    shutil.copytree(REPO / "config/mosquitto", tmp_path / "mosquitto")  # the credentials files the config names
    config.write_text(
        CONFIG.read_text().replace(
            "[twin]\n", f"[twin]\nmodbus_base_port = {base}\nstart = 2026-04-15T12:00:00+09:00\n"
        )
    )
    twin = subprocess.Popen(
        [sys.executable, "-m", "ems", "twin", "--config", str(config), "--mqtt-port", str(mosquitto.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        banner = []
        while not banner or "serving" not in banner[-1]:
            line = twin.stdout.readline()
            assert line, f"ems twin ended early: {twin.stderr.read()}"
            banner.append(line)
        assert f"modbus://127.0.0.1:{base}/1" in "".join(banner)
        assert any("city_hall_bess" in line and "battery" in line for line in banner)
        assert any("arao/depot_c01/" in line for line in banner)

        written = run_cli(
            "devices",
            "--config",
            str(config),
            "--mqtt-port",
            str(mosquitto.port),
            "--set",
            "city_hall_bess=20",
            "--only",
            "city_hall_bess",
        )
        assert written.returncode == 0, written.stderr
        assert "city_hall_bess: set-point 20 kW -> applied 20 kW" in written.stdout

        listed = run_cli("devices", "--config", str(config), "--mqtt-port", str(mosquitto.port), "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {row["device"]: row for row in json.loads(listed.stdout)}
        assert set(rows) == {e.asset_id for e in endpoints(load_portfolio(config))}
        assert all(row["quality"] == "good" for row in rows.values()), [
            r for r in rows.values() if r["quality"] != "good"
        ]
        assert rows["city_hall_bess"]["power_kw"] == pytest.approx(20.0)
        assert rows["city_hall_pv"]["power_kw"] > 20 and rows["city_hall_load"]["power_kw"] < 0
        assert rows["depot_c01"]["plugged"] is True and rows["taxi-01"]["soc"] == pytest.approx(0.55, abs=0.01)

        table = run_cli(
            "devices",
            "--config",
            str(config),
            "--mqtt-port",
            str(mosquitto.port),
            "--only",
            "city_hall_bess",
            "taxi-12",
        )
        header = table.stdout.splitlines()[0].split()
        assert header[:4] == ["device", "power_kw", "soc", "quality"]
        assert "city_hall_bess" in table.stdout and "taxi-12" in table.stdout

        refused = run_cli(
            "devices",
            "--config",
            str(config),
            "--mqtt-port",
            str(mosquitto.port),
            "--set",
            "city_hall_pv=5",
            "--only",
            "city_hall_pv",
        )
        assert refused.returncode == 1 and "not writable" in refused.stdout
    finally:
        twin.send_signal(signal.SIGINT)
        out, err = twin.communicate(timeout=15)
    assert twin.returncode == 0, err
    assert "twin stopped" in out


def test_ems_devices_reports_missing_devices_when_no_twin_runs(tmp_path):
    base = free_port_block(30)
    config = tmp_path / "arao.toml"
    shutil.copytree(REPO / "config/mosquitto", tmp_path / "mosquitto")
    config.write_text(
        CONFIG.read_text().replace(
            "[twin]\n", f"[twin]\nmodbus_base_port = {base}\nmodbus_timeout_s = 0.3\nmqtt_timeout_s = 0.3\n"
        )
    )
    result = run_cli(
        "devices",
        "--config",
        str(config),
        "--mqtt-port",
        str(base + 35),
        "--json",
        "--only",
        "city_hall_bess",
        "depot_c01",
    )
    rows = json.loads(result.stdout)
    assert [(r["device"], r["quality"]) for r in rows] == [("city_hall_bess", "missing"), ("depot_c01", "missing")]
    assert "cannot connect" in rows[0]["error"]
