"""The README's set-up, as a user runs it: ``ems broker`` with the shipped users and ACL, the
twin and the controller logging in from the credentials files the portfolio names, forged
commands refused by the broker, and one process per role on a broker.

Real processes throughout: ``ems broker`` (Mosquitto), ``ems run --twin``, ``ems twin``,
``ems run`` and Mosquitto's own ``mosquitto_pub``/``mosquitto_sub`` clients.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from drivers.sim.clock import ManualClock
from ems.config import load_portfolio
from ems.devices import DeviceSet, controller_broker
from tests.conftest import REPO, free_port, free_port_block, wait_for_port

CONFIG = REPO / "config/arao.toml"
NOON = dt.datetime(2026, 4, 15, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
FORGED = '{"id": "forged-1", "power_kw": 6.0}'


@pytest.fixture
def ems_broker():
    """``ems broker --config config/arao.toml`` on a free port, stopped with SIGTERM at the end."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ems", "broker", "--config", str(CONFIG), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        wait_for_port(port, 10)
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"ems broker did not listen: {process.communicate(timeout=5)}") from None
    broker = SimpleNamespace(host="127.0.0.1", port=port, process=process)
    yield broker
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)


def mosquitto_client(tool: str, broker, *args: str, user: tuple[str, str] | None = None) -> subprocess.CompletedProcess:
    credentials = ["-u", user[0], "-P", user[1]] if user else []
    return subprocess.run(
        [tool, "-h", broker.host, "-p", str(broker.port), "-i", f"{tool}-test", *credentials, *args],
        capture_output=True,
        text=True,
        timeout=15,
    )


def test_the_shipped_acl_refuses_anonymous_and_observer_commands(shipped_broker, twin_factory):
    ems_broker = shipped_broker  # the same files `ems broker` serves (that command: the next test)
    portfolio = load_portfolio(CONFIG)
    runner = twin_factory(CONFIG, ems_broker, clock=ManualClock(NOON), portfolio=portfolio)
    served = runner.twin.portfolio
    charger = runner.twin.mqtt_devices["depot_c06"]

    async def command() -> float:
        devices = DeviceSet(served, controller_broker(served, CONFIG, ems_broker.host, ems_broker.port), {"depot_c06"})
        await devices.open()
        try:
            return (await devices.write("depot_c06", -3.0)).applied_kw
        finally:
            await devices.close()

    assert asyncio.run(command()) == pytest.approx(-3.0)  # the controller, logged in from its credentials file
    applied = charger.commands_applied

    anonymous = mosquitto_client("mosquitto_pub", ems_broker, "-q", "1", "-t", "arao/depot_c06/command", "-m", FORGED)
    assert anonymous.returncode != 0 and "not authori" in (anonymous.stdout + anonymous.stderr).lower()
    listening = mosquitto_client("mosquitto_sub", ems_broker, "-t", "arao/#", "-C", "1", "-W", "2")
    assert listening.returncode != 0 and "not authori" in (listening.stdout + listening.stderr).lower()
    for user in (
        ("observer", "observer-example-only"),
        ("dispatcher", "dispatcher-example-only"),
        ("twin", "twin-example-only"),
    ):
        # MQTT 3.1.1 has no refusal for a publish: the broker accepts it and drops it (its ACL)
        forged = mosquitto_client(
            "mosquitto_pub", ems_broker, "-q", "1", "-t", "arao/depot_c06/command", "-m", FORGED, user=user
        )
        assert forged.returncode == 0, forged.stderr
    time.sleep(0.5)
    assert charger.commands_applied == applied
    assert runner.twin.chargers["depot_c06"].setpoint_kw == pytest.approx(-3.0)
    observed = mosquitto_client(
        "mosquitto_sub",
        ems_broker,
        "-t",
        "arao/depot_c06/telemetry",
        "-C",
        "1",
        "-W",
        "5",
        user=("observer", "observer-example-only"),
    )
    assert observed.returncode == 0 and json.loads(observed.stdout)["setpoint_kw"] == pytest.approx(-3.0)


def watch_presence(broker, expected: set[str], process: subprocess.Popen, timeout_s: float = 60.0) -> dict[str, str]:
    """Wait until every client id in ``expected`` is announced online (read as the observer), or
    until ``process`` ends."""
    seen: dict[str, str] = {}
    ready = threading.Event()

    def on_message(client, userdata, message) -> None:
        seen[message.topic.rsplit("/", 1)[-1]] = message.payload.decode()
        if all(seen.get(c, "offline") != "offline" for c in expected):
            ready.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="presence-watch")
    client.username_pw_set("observer", "observer-example-only")
    client.on_connect = lambda c, *_: c.subscribe("presence/#", qos=1)
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    try:
        while not ready.wait(0.2) and process.poll() is None and time.monotonic() < deadline:
            pass
    finally:
        client.disconnect()
        client.loop_stop()
    return seen


def start_controller_with_twin(broker, tmp_path) -> tuple[subprocess.Popen, dict[str, str], int]:
    """``ems run --twin`` holding both client ids; retried when another process took a port of
    the free block before the twin bound it (the machine is shared)."""
    for _attempt in range(3):
        base = free_port_block(30)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ems",
                "run",
                "--config",
                str(CONFIG),
                "--twin",
                "--speed",
                "60",
                "--mqtt-port",
                str(broker.port),
                "--modbus-base-port",
                str(base),
                "--store",
                str(tmp_path / "first.sqlite"),
                "--bcp-state-dir",
                str(tmp_path / "bcp"),
                "--status-every-s",
                "0.5",
                "--start",
                "2026-04-15T12:00:00+09:00",
                "--inputs",
                "profiles",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        present = watch_presence(broker, {"twin-arao", "ems-controller-arao"}, process)
        if process.poll() is None:
            return process, present, base
        out, err = process.communicate()
        assert "cannot listen" in err, err[-2000:]
    raise AssertionError("no free Modbus ports for the twin after 3 attempts")


def ems(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ems", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def test_a_second_twin_or_controller_on_the_broker_is_refused(ems_broker, tmp_path):
    first, present, base = start_controller_with_twin(ems_broker, tmp_path)
    try:
        holder = json.loads(present["ems-controller-arao"])
        assert holder["pid"] == first.pid and holder["role"] == "controller"

        # both refused processes at once: each pays its own interpreter start-up
        second_twin = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ems",
                "twin",
                "--config",
                str(CONFIG),
                "--mqtt-port",
                str(ems_broker.port),
                "--modbus-base-port",
                str(base + 1000),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        # a one-shot read while the controller runs: its own client id, so nobody is thrown off
        reader = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ems",
                "devices",
                "--config",
                str(CONFIG),
                "--mqtt-port",
                str(ems_broker.port),
                "--only",
                "depot_c01",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        second_run = ems(
            "run",
            "--config",
            str(CONFIG),
            "--mqtt-port",
            str(ems_broker.port),
            "--store",
            str(tmp_path / "second.sqlite"),
            "--bcp-state-dir",
            str(tmp_path / "bcp"),
        )
        read_out, read_err = reader.communicate(timeout=60)
        assert reader.returncode == 0, read_err
        assert json.loads(read_out)[0]["quality"] == "good"
        twin_out, twin_err = second_twin.communicate(timeout=60)
        assert second_twin.returncode == 2, twin_err
        assert "'twin-arao'" in twin_err and "already connected" in twin_err
        assert "Traceback" not in twin_err and len(twin_err.strip().splitlines()) == 1
        assert second_run.returncode == 2, second_run.stderr
        assert f"controller (pid {first.pid}" in second_run.stderr and "'ems-controller-arao'" in second_run.stderr
        assert "Traceback" not in second_run.stderr
        assert not (tmp_path / "second.sqlite").exists()  # refused before it touched anything
        assert first.poll() is None  # the first controller was never thrown off
    finally:
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    # stopping released both ids: the presence records say offline
    released = mosquitto_client(
        "mosquitto_sub",
        ems_broker,
        "-t",
        "presence/ems-controller-arao",
        "-C",
        "1",
        "-W",
        "3",
        user=("observer", "observer-example-only"),
    )
    assert released.stdout.strip() == "offline"


def test_ems_broker_with_tls_refuses_plain_connections(tmp_path, test_pki):
    import shutil

    from pydantic import SecretStr

    from drivers.mqtt.link import BrokerSettings, MqttLink

    shutil.copytree(REPO / "config/mosquitto", tmp_path / "mosquitto")
    port = free_port()
    config = tmp_path / "arao.toml"
    config.write_text(
        CONFIG.read_text().replace(
            'credentials_file = "mosquitto/controller.credentials"',
            f'credentials_file = "mosquitto/controller.credentials"\ntls = true\nca_file = "{test_pki.path("ca.crt")}"',
        )
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ems",
            "broker",
            "--config",
            str(config),
            "--port",
            str(port),
            "--certfile",
            test_pki.path("server.crt"),
            "--keyfile",
            test_pki.path("server.key"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    links = []
    try:
        wait_for_port(port, 10)
        portfolio = load_portfolio(config)
        secure = MqttLink(controller_broker(portfolio, config, port=port))
        plain = MqttLink(
            BrokerSettings(
                port=port, client_id="plain", username="ems-controller", password=SecretStr("controller-example-only")
            )
        )
        links = [secure, plain]
        for link in links:
            link.start()
        assert secure.wait_connected(5)  # TLS 1.2+, the broker's certificate checked against the CA
        assert not plain.wait_connected(1.0)
    finally:
        for link in links:
            link.stop()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert f"mqtts://127.0.0.1:{port}" in out and "broker stopped" in out
