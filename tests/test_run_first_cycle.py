"""`ems run` as an operator starts it: a fault in the very first cycle does not end the process,
and `ems status --json` then shows what happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from drivers.mqtt.link import BrokerSettings, MqttLink
from tests.conftest import free_port_block


def test_a_charger_offline_in_the_first_cycle_does_not_end_ems_run(mosquitto, tmp_path, capsys):
    store = tmp_path / "ems.sqlite"
    operator = MqttLink(BrokerSettings(host=mosquitto.host, port=mosquitto.port, client_id="test-operator"))
    operator.start()
    assert operator.wait_connected(5)
    started = threading.Event()

    def keep_offline():  # depot_c01 keeps dropping off while taxi-01 is out on its 07:00 shift
        while not started.is_set():
            operator.publish("arao/depot_c01/availability", "offline", retain=True)
            time.sleep(0.05)

    publisher = threading.Thread(target=keep_offline, daemon=True)
    publisher.start()
    command = [
        sys.executable,
        "-m",
        "ems",
        "run",
        "--config",
        "config/arao.toml",
        "--twin",
        "--speed",
        "60",
        "--start",
        "2026-04-15T08:00+09:00",
        "--mqtt-host",
        mosquitto.host,
        "--mqtt-port",
        str(mosquitto.port),
        "--modbus-base-port",
        str(free_port_block(40)),
        "--store",
        str(store),
        "--inputs",
        "profiles",
        "--status-every-s",
        "0.5",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"}
    )
    lines = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
            lines.append(line)
            if line.startswith("2026-04-15") and " | plan " in line:
                break
        started.set()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        started.set()
        if process.poll() is None:
            process.kill()
        operator.stop()
    lines += out.splitlines()
    assert process.returncode == 0, err[-2000:]
    status_lines = [line for line in lines if line.startswith("2026-04-15")]
    assert status_lines and all("+09:00 |" in line for line in status_lines)  # one clock, with its offset
    assert any(" | plan optimal" in line or " | plan fallback" in line for line in status_lines)

    from ems.cli import main

    capsys.readouterr()
    assert main(["status", "--config", "config/arao.toml", "--store", str(store), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["last_plan"]["status"] in ("optimal", "time-limit", "fallback")
    assert report["last_plan"]["time"].startswith("2026-04-15T08:") and report["last_plan"]["time"].endswith("+09:00")
    assert report["replan"]["failures_since_last_plan"] == 0
    assert (
        "taxi-01" in report["replan"]["last_degraded"]["message"]
        and "depot_c01" in report["replan"]["last_degraded"]["message"]
    )
    assert report["controller"]["last"] == "shutdown"
    assert report["outbox"] == {"backlog_lines": 0, "rejected_lines": 0} and report["last_foreign_write"] is None
