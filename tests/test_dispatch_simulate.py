"""Replays: every served rider within limits, seats and batteries respected, and the commands."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from dispatch.assign import Policy
from dispatch.demand import DemandModel, generate_requests
from dispatch.fleet import fleet_from_portfolio
from dispatch.model import Point
from dispatch.requests_io import ServiceArea, read_requests
from dispatch.router import make_router
from dispatch.simulate import Simulation, kpis
from ems.cli import dispatch as dispatch_cli
from ems.config import load_portfolio
from ems.fleet import Reservation, ShelterCall, VehiclePlan, VehicleStatus

CONFIG = Path(__file__).resolve().parent.parent / "config" / "arao.toml"
DAY = dt.date(2026, 4, 15)


@pytest.fixture(scope="module")
def portfolio():
    return load_portfolio(CONFIG)


@pytest.fixture(scope="module")
def log(portfolio, tmp_path_factory):
    path = tmp_path_factory.mktemp("log") / "requests.csv"
    generate_requests(DAY, 90, seed=3).to_csv(path, index=False)
    info = portfolio.portfolio
    return read_requests(
        path, ServiceArea(Point(info.latitude_deg, info.longitude_deg), info.service_area_km), info.timezone, 4
    )


def _run(portfolio, log, policy=Policy.ILP, reservation=None):
    settings = portfolio.dispatch
    router = make_router(settings.speed_kmh, settings.detour_factor, None)
    setup = fleet_from_portfolio(portfolio, log.clock.date)
    return Simulation(setup, log.requests, router, settings, policy, DemandModel(len(log.requests)), reservation).run()


@pytest.mark.parametrize("policy", list(Policy))
def test_replay_keeps_every_limit(portfolio, log, policy):
    settings = portfolio.dispatch
    result = _run(portfolio, log, policy)
    served = [r for r in result.riders.values() if r.dropoff_s is not None]
    assert len(served) + sum(r.rejection is not None for r in result.riders.values()) == len(log.requests)
    assert len(served) >= 0.9 * len(log.requests)
    for rider in served:
        assert rider.pickup_s - rider.request.time_s <= settings.max_wait_s + 1.0
        assert rider.dropoff_s - rider.pickup_s <= settings.max_ride_s(rider.direct_s) + 1.0
    seats = {v.id: v.seats for v in portfolio.vehicles}
    for vehicle in result.vehicles.values():
        assert vehicle.max_load <= seats[vehicle.spec.vehicle_id]
        assert vehicle.min_soc_kwh >= vehicle.spec.soc_min_kwh
    figures = kpis(result)
    if policy is Policy.NO_POOLING:
        assert figures["shared_ride_share"] == 0.0
        assert all(v.max_load <= 3 for v in result.vehicles.values())  # one party at a time
    assert figures["vehicle_km"] == pytest.approx(sum(v.km for v in result.vehicles.values()))


def test_reservation_is_honoured(portfolio, log):
    clock = log.clock
    reservation = Reservation(
        issued=clock.to_datetime(0),
        keep_energy_kwh={"taxi-10": 40.0},  # all of its battery: it may take no rider
        shelter_calls=(
            ShelterCall(vehicle_id="taxi-04", shelter_id="north_school_gym", from_time=clock.to_datetime(11 * 3600)),
        ),
    )
    result = _run(portfolio, log, reservation=reservation)
    assert not any(r.vehicle_id == "taxi-10" for r in result.riders.values())
    called = result.vehicles["taxi-04"]
    assert called.at_shelter
    assert called.status() is VehicleStatus.RESERVED_FOR_SHELTER
    late = [r for r in result.riders.values() if r.vehicle_id == "taxi-04" and r.dropoff_s > 11 * 3600]
    assert late == []
    shelter_site = next(s for s in portfolio.sites if s.id == "shelter_north")
    assert called.position == Point(shelter_site.latitude_deg, shelter_site.longitude_deg)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ems")
    dispatch_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_generate_and_simulate_commands_write_their_outputs(tmp_path, capsys):
    requests = tmp_path / "requests.csv"
    assert (
        _cli(
            [
                "dispatch",
                "generate",
                "--config",
                str(CONFIG),
                "--date",
                "2026-04-15",
                "--requests",
                "40",
                "--out",
                str(requests),
            ]
        )
        == 0
    )
    out = tmp_path / "run"
    assert _cli(["dispatch", "simulate", "--config", str(CONFIG), "--requests", str(requests), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "served_share" in printed and "mean_wait_s" in printed
    figures = json.loads((out / "kpis.json").read_text())
    for key in (
        "served_share",
        "mean_wait_s",
        "p95_wait_s",
        "mean_detour_ratio",
        "vehicle_km",
        "empty_km_share",
        "shared_ride_share",
        "mean_occupancy",
        "energy_kwh",
        "charging_stops",
        "assign_ms_p50",
        "assign_ms_p95",
    ):
        assert key in figures
    assert 0.0 < figures["served_share"] <= 1.0
    with (out / "trips.csv").open() as handle:
        trips = list(csv.DictReader(handle))
    assert len(trips) == 40
    served = [t for t in trips if t["dropoff_time"]]
    assert all(
        dt.datetime.fromisoformat(t["pickup_time"]) < dt.datetime.fromisoformat(t["dropoff_time"]) for t in served
    )
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plans = json.loads((out / "fleet_plans.json").read_text())
    assert len(plans) == 12
    assert all(VehiclePlan.model_validate(p).windows for p in plans.values())


def test_simulate_reports_a_bad_request_file(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "request_id,time,origin_lat,origin_lon,dest_lat,dest_lon,passengers\n"
        "a,2026-04-15T08:00:00+09:00,32.98,130.44,32.99,130.45,0\n"
    )
    assert (
        _cli(["dispatch", "simulate", "--config", str(CONFIG), "--requests", str(bad), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "line 2 (request a): passengers is 0" in capsys.readouterr().err


def test_simulate_on_a_road_graph_given_in_the_config(tmp_path):
    import networkx as nx

    grid = nx.Graph()  # a street grid over the town, about 330 m between crossings
    for i in range(40):
        for j in range(40):
            grid.add_node(f"{i}_{j}", y=32.93 + i * 0.003, x=130.38 + j * 0.0036)
            if i:
                grid.add_edge(f"{i - 1}_{j}", f"{i}_{j}")
            if j:
                grid.add_edge(f"{i}_{j - 1}", f"{i}_{j}")
    nx.write_graphml(grid, tmp_path / "streets.graphml")
    config = tmp_path / "arao.toml"
    config.write_text(
        CONFIG.read_text().replace("[planning]", '[dispatch]\nroad_graph_file = "streets.graphml"\n\n[planning]', 1)
    )
    requests = tmp_path / "requests.csv"
    generate_requests(DAY, 30, seed=5).to_csv(requests, index=False)
    out = tmp_path / "run"
    assert _cli(["dispatch", "simulate", "--config", str(config), "--requests", str(requests), "--out", str(out)]) == 0
    on_graph = json.loads((out / "kpis.json").read_text())
    straight = tmp_path / "straight"
    assert (
        _cli(["dispatch", "simulate", "--config", str(CONFIG), "--requests", str(requests), "--out", str(straight)])
        == 0
    )
    assert on_graph["served_share"] >= 0.9
    assert on_graph["vehicle_km"] != pytest.approx(
        json.loads((straight / "kpis.json").read_text())["vehicle_km"], rel=1e-3
    )
