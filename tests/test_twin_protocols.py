"""The twin speaking OCPP and ECHONET Lite: ``ems twin --chargers ocpp --v2h echonet`` and
``ems devices`` against it, as an operator runs them; and the 1.6 discharge extension."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import signal
import subprocess
import sys

import pytest

from drivers.api import Quality
from ems.config import load_portfolio
from ems.devices import DeviceSet, controller_broker
from tests.conftest import REPO, free_port, free_port_block
from tests.echonet_fixtures import free_udp_port, private_network

CONFIG = REPO / "config/arao.toml"
TOKYO = dt.timezone(dt.timedelta(hours=9))


def protocol_config(tmp_path) -> tuple:
    base, ocpp_port, udp_port, network = free_port_block(30), free_port(), free_udp_port(), private_network()
    config = tmp_path / "arao.toml"
    shutil.copytree(REPO / "config/mosquitto", tmp_path / "mosquitto")  # the credentials files the config names
    twin = f"""[twin]
modbus_base_port = {base}
start = 2026-04-15T12:00:00+09:00
echonet_network = "{network}"
echonet_port = {udp_port}
ocpp_retry_s = 0.2
"""
    config.write_text(CONFIG.read_text().replace("[twin]\n", twin, 1) + f"\n[ocpp]\nport = {ocpp_port}\n")
    return config, network


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ems", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def test_ems_twin_over_ocpp_and_echonet_and_ems_devices_against_it(mosquitto, tmp_path):
    config, network = protocol_config(tmp_path)
    flags = ("--chargers", "ocpp", "--v2h", "echonet", "--mqtt-port", str(mosquitto.port))
    twin = subprocess.Popen(
        [sys.executable, "-m", "ems", "twin", "--config", str(config), *flags],
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
        text = "".join(banner)
        assert "12 OCPP charge points, 5 ECHONET Lite nodes" in text
        assert f"ECHONET Lite 0x027E node {network[:-4]}1:" in text

        written = run_cli(
            "devices",
            "--config",
            str(config),
            *flags,
            "--json",
            "--set",
            "depot_c01=-4",
            "--only",
            "depot_c01",
            "depot_c11",
            "shelter_north_v2h1",
            "taxi-01",
        )
        assert written.returncode == 0, written.stdout + written.stderr
        assert "depot_c01: set-point -4 kW -> applied -4 kW" in written.stdout
        rows = {row["device"]: row for row in json.loads(written.stdout[written.stdout.index("[") :])}
        assert all(row["quality"] == "good" for row in rows.values()), rows
        assert rows["depot_c01"]["plugged"] is True and rows["depot_c01"]["vehicle_id"] == "taxi-01"
        assert rows["depot_c01"]["setpoint_kw"] == pytest.approx(-4.0)
        assert rows["depot_c01"]["soc"] == pytest.approx(rows["taxi-01"]["soc"], abs=0.01)
        assert rows["shelter_north_v2h1"]["plugged"] is False and rows["shelter_north_v2h1"]["power_kw"] == 0.0
    finally:
        twin.send_signal(signal.SIGINT)
        out, err = twin.communicate(timeout=20)
    assert twin.returncode == 0, err
    assert "twin stopped" in out


def test_a_bidirectional_twin_charge_point_discharges_through_the_vendor_extension(twin_factory, tmp_path):
    config, _ = protocol_config(tmp_path)
    portfolio = load_portfolio(config)
    portfolio = portfolio.model_copy(update={"twin": portfolio.twin.model_copy(update={"chargers": "ocpp"})})
    runner = twin_factory(config, portfolio=portfolio, start=dt.datetime(2026, 4, 15, 12, 0, tzinfo=TOKYO))

    async def scenario():
        devices = DeviceSet(
            portfolio, controller_broker(portfolio, config), {"depot_c01", "depot_c11"}, config_path=config
        )
        await devices.open()
        try:
            ack = await devices.drivers["depot_c01"].write(3.0)
            charge_only = await devices.drivers["depot_c11"].read()
            return ack, charge_only
        finally:
            await devices.close()

    ack, charge_only = asyncio.run(scenario())
    charger = runner.twin.chargers["depot_c01"]
    assert ack.applied_kw == pytest.approx(3.0) and charger.setpoint_kw == pytest.approx(3.0)
    assert charge_only.quality is Quality.GOOD
