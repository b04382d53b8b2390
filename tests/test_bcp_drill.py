"""``ems bcp drill`` as an operator runs it: report, bcp.json, errors, and nothing sent."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from ems.cli import main

SPEC_12H = (
    "start=2026-09-15T14:00+09:00; hours=12; sites=shelter_north,shelter_central,shelter_south,city_hall; pv_scale=0.3"
)


def _listen(port: int, received: list, ready: threading.Event) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bcp-drill-watch")
    client.on_connect = lambda c, *_: c.subscribe("#")
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, message: received.append((message.topic, message.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_drill_sends_nothing_to_the_broker(tmp_path, mosquitto):
    """The drill runs with the configured broker up and a listener on '#': not one message."""
    config = tmp_path / "arao.toml"
    config.write_text(Path("config/arao.toml").read_text().replace("port = 1883", f"port = {mosquitto.port}"))
    received, ready = [], threading.Event()
    listener = _listen(mosquitto.port, received, ready)
    try:
        assert ready.wait(5)
        probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bcp-probe")
        probe.connect("127.0.0.1", mosquitto.port)
        probe.loop_start()
        probe.publish("probe/check", b"1", qos=1).wait_for_publish(5)
        probe.loop_stop()
        probe.disconnect()
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert received == [("probe/check", b"1")]  # the listener does hear messages
        received.clear()
        # the drill as a process, reporting which modules it loaded: no driver, broker or Modbus client
        code = (
            "import sys; from ems.cli import main; "
            f"rc = main(['bcp', 'drill', '--config', {str(config)!r}, '--outage', {SPEC_12H!r}, "
            f"'--out', {str(tmp_path / 'drill')!r}]); "
            "loaded = sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('drivers', 'paho', 'pymodbus', 'dispatch')); "
            "print(rc, loaded)"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "0 []"
        time.sleep(0.5)
        assert received == []
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert (tmp_path / "drill" / "bcp.json").is_file()


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    out = tmp_path_factory.mktemp("drill")
    assert main(["bcp", "drill", "--config", "config/arao.toml", "--outage", SPEC_12H, "--out", str(out)]) == 0
    return out


def test_bcp_json_has_the_figures_of_the_issue(drill):
    summary = json.loads((drill / "bcp.json").read_text())
    shelters = {"north_school_gym", "central_community_hall", "south_school_gym"}
    assert set(summary["shelter_hours"]) == shelters == set(summary["upper_bound_hours"])
    assert summary["critical_energy_demand_kwh"] > 0
    assert summary["served_share"] == pytest.approx(
        summary["critical_energy_served_kwh"] / summary["critical_energy_demand_kwh"], abs=1e-3
    )
    assert isinstance(summary["vehicles_assigned"], list) and summary["vehicles_assigned"]
    assert summary["vehicle_km"] > 0
    assert summary["drill"] is True and summary["outage"]["duration_hours"] == 12
    assert summary["outage"]["sites"] == ["shelter_north", "shelter_central", "shelter_south", "city_hall"]


def test_report_is_self_contained_html_with_plots(drill):
    html = (drill / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    assert 'src="http' not in html and "<script" not in html
    assert "no set-point was sent" in html
    assert "north_school_gym" in html


def test_supply_csv_adds_up_to_the_served_energy_of_bcp_json(drill):
    import csv

    summary = json.loads((drill / "bcp.json").read_text())
    with (drill / "supply.csv").open() as file:
        rows = list(csv.DictReader(file))
    step_h = summary["step_minutes"] / 60
    assert {r["shelter"] for r in rows} == set(summary["shelter_hours"])
    assert len(rows) == len(summary["shelter_hours"]) * summary["duration_hours"] / step_h
    for shelter, served_kwh in summary["served_kwh_by_shelter"].items():
        assert sum(float(r["served_kw"]) for r in rows if r["shelter"] == shelter) * step_h == pytest.approx(
            served_kwh, abs=0.05
        )
        assert all(float(r["served_kw"]) <= float(r["demand_kw"]) + 1e-3 for r in rows if r["shelter"] == shelter)


def test_progress_lines_name_each_step_in_order(tmp_path, capsys):
    assert (
        main(
            [
                "bcp",
                "drill",
                "--config",
                "config/arao.toml",
                "--outage",
                SPEC_12H,
                "--no-fleet",
                "--progress",
                "--out",
                str(tmp_path / "drill"),
            ]
        )
        == 0
    )
    steps = [line for line in capsys.readouterr().out.splitlines() if line.startswith("progress ")]
    assert [s.split(":")[0] for s in steps] == [f"progress {k}/5" for k in range(1, 6)]
    assert steps[3].endswith("solving the BCP problem")


def test_state_file_sets_the_energy_on_board(tmp_path, drill):
    empty = {f"taxi-{i:02d}": 4.0 for i in range(1, 11)} | {"shelter_north_bess": 2.0, "shelter_south_bess": 2.0}
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"soc_kwh": empty}))
    out = tmp_path / "low"
    assert (
        main(
            [
                "bcp",
                "drill",
                "--config",
                "config/arao.toml",
                "--outage",
                SPEC_12H,
                "--state",
                str(state),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    low = json.loads((out / "bcp.json").read_text())
    default = json.loads((drill / "bcp.json").read_text())
    # vehicles at their minimum must charge before they can give anything; batteries give only what
    # PV or a vehicle plugged in there puts in
    assert low["served_share"] < default["served_share"]
    for shelter, kwh in low["battery_delivered_kwh"].items():
        from_vehicles = sum(v["delivered_kwh"] for v in low["visits"] if v["shelter"] == shelter)
        assert kwh <= low["pv_used_kwh"][shelter] + from_vehicles + 1e-6
    assert low["state"] == str(state)


@pytest.mark.parametrize(
    "outage, message",
    [
        ("start=2026-09-15T14:00+09:00; hours=24; sites=atlantis", "sites: atlantis not in the portfolio"),
        ("start=2026-09-15T14:00; hours=24; sites=shelter_north", "start: Value error, must be timezone-aware"),
        ("config/outages/missing.toml", "config/outages/missing.toml: no such file"),
        ("hours 24", "'hours 24' is not key=value"),
    ],
)
def test_bad_outage_stops_with_a_message_naming_it(outage, message, tmp_path, capsys):
    assert (
        main(["bcp", "drill", "--config", "config/arao.toml", "--outage", outage, "--out", str(tmp_path / "never")])
        == 2
    )
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_bad_state_file_names_the_key(tmp_path, capsys):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"soc_kwh": {"taxi-99": 10.0, "taxi-01": 400.0}}))
    assert (
        main(
            [
                "bcp",
                "drill",
                "--config",
                "config/arao.toml",
                "--outage",
                SPEC_12H,
                "--state",
                str(state),
                "--out",
                str(tmp_path / "never"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"{state}: soc_kwh.taxi-99: not a vehicle or battery id" in err
    assert "soc_kwh.taxi-01: must be a number between 0 and 40.0 kWh" in err


def test_drill_writes_the_reservation_it_would_publish(drill):
    from ems.fleet import Reservation

    reservation = Reservation.model_validate_json((drill / "reservation.json").read_text())
    visits = json.loads((drill / "bcp.json").read_text())["visits"]
    assert [(c.vehicle_id, c.shelter_id, c.from_time.isoformat()) for c in reservation.shelter_calls] == [
        (v["vehicle"], v["shelter"], v["arrive"]) for v in visits
    ]
    assert set(reservation.keep_energy_kwh) == {v["vehicle"] for v in visits}
    assert all(kwh > 0 for kwh in reservation.keep_energy_kwh.values())


def test_twin_drill_reads_over_the_protocols_and_writes_nothing(mosquitto, tmp_path):
    """Against the digital twin: the drill's snapshot reads every device, and afterwards no
    Modbus register was written, no charger took a command, and no command, reservation or fleet
    message crossed the broker."""
    from ems.config import load_portfolio
    from simulations.bcp_drill import twin_snapshot
    from tests.conftest import free_port_block

    received, ready = [], threading.Event()
    listener = _listen(mosquitto.port, received, ready)
    try:
        assert ready.wait(5)
        portfolio = load_portfolio("config/arao.toml")
        snapshot = twin_snapshot(portfolio, "config/arao.toml", mosquitto.host, mosquitto.port, free_port_block(40))
    finally:
        listener.loop_stop()
        listener.disconnect()
    twin = snapshot.twin
    assert {b.id for b in portfolio.batteries} <= set(snapshot.soc_kwh)
    plugged = [r.vehicle_id for r in snapshot.readings if r.plugged and r.vehicle_id]
    assert plugged and set(plugged) <= set(snapshot.soc_kwh)
    for vehicle_id in plugged:  # what the charger reported is what the twin's vehicle holds
        assert snapshot.soc_kwh[vehicle_id] == pytest.approx(twin.vehicles[vehicle_id].soc_kwh, abs=0.5)
    assert all(server.store.writes == [] for server in twin.servers.values())
    assert all(getattr(device, "commands_applied", 0) == 0 for device in twin.mqtt_devices.values())
    topics = {topic for topic, _ in received}
    assert any(t.endswith("/telemetry") for t in topics)  # the listener heard the twin
    assert not [t for t in topics if t.endswith("/command") or t.startswith(("ems/", "fleet/"))]


def test_twin_drill_from_the_command_line(mosquitto, tmp_path):
    from tests.conftest import free_port_block

    out = tmp_path / "twin-drill"
    assert (
        main(
            [
                "bcp",
                "drill",
                "--config",
                "config/arao.toml",
                "--outage",
                SPEC_12H,
                "--twin",
                "--mqtt-host",
                mosquitto.host,
                "--mqtt-port",
                str(mosquitto.port),
                "--modbus-base-port",
                str(free_port_block(40)),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "bcp.json").read_text())
    assert summary["state"].startswith("digital twin: ")
    assert "city_hall_bess" in summary["initial_soc_kwh"] and "taxi-01" in summary["initial_soc_kwh"]


def test_drill_takes_the_latest_state_from_the_store(tmp_path):
    import datetime as dt

    from ems.store import Store

    path = tmp_path / "ems.sqlite"
    store = Store(path)
    now = dt.datetime.now(dt.UTC)
    store.record_telemetry(
        [
            (now - dt.timedelta(minutes=10), "shelter_north_bess", "soc_fraction", 0.9, "good"),
            (now - dt.timedelta(minutes=5), "shelter_north_bess", "soc_fraction", 0.25, "good"),  # the latest counts
            (now - dt.timedelta(minutes=4), "shelter_north_bess", "soc_fraction", 0.99, "stale"),  # not good: ignored
            (now - dt.timedelta(minutes=5), "depot_c01", "soc_fraction", 0.5, "good"),  # taxi-01 at its home charger
        ]
    )
    store.close()
    out = tmp_path / "drill"
    assert (
        main(
            [
                "bcp",
                "drill",
                "--config",
                "config/arao.toml",
                "--outage",
                SPEC_12H,
                "--store",
                str(path),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "bcp.json").read_text())
    assert summary["state"].startswith(f"store {path}: 2 batteries and vehicles")
    assert summary["initial_soc_kwh"] == {"shelter_north_bess": 5.0, "taxi-01": 20.0}


def test_an_outage_that_spares_every_shelter_reports_them_up(tmp_path):
    out = tmp_path / "spared"
    assert (
        main(
            [
                "bcp",
                "drill",
                "--config",
                "config/arao.toml",
                "--outage",
                "start=2026-09-15T14:00+09:00; hours=6; sites=city_hall",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "bcp.json").read_text())
    assert set(summary["shelter_hours"].values()) == {6.0}
    assert summary["critical_energy_demand_kwh"] == 0.0 and summary["served_share"] == 1.0
    assert summary["vehicles_assigned"] == []
