"""The live dispatcher as an operator meets it: ``ems dispatch serve`` and ``ems dispatch feed`` as
real processes on a real Mosquitto with the shipped users and ACL; the dispatcher killed and
restarted, the broker restarted, malformed and unauthorised requests, a reservation followed."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time

import pytest

from dispatch.assign import Policy
from dispatch.demand import DemandModel
from dispatch.fleet import fleet_from_portfolio
from dispatch.model import Point
from dispatch.requests_io import ServiceArea, read_requests
from dispatch.router import make_router
from dispatch.simulate import Simulation, kpis
from ems.config import load_portfolio
from ems.fleet import Reservation, ShelterCall, VehiclePlan, VehicleState, VehicleStatus
from tests.dispatch_live_fixtures import (
    CONFIG,
    FINAL,
    START,
    LiveRun,
    Rider,
    live_figures,
    persistent_broker,
    stop,
    wait_until,
    write_log,
)


def _replay(requests_path):
    portfolio = load_portfolio(CONFIG)
    info = portfolio.portfolio
    area = ServiceArea(Point(info.latitude_deg, info.longitude_deg), info.service_area_km)
    log = read_requests(requests_path, area, info.timezone, max(v.seats for v in portfolio.vehicles))
    settings = portfolio.dispatch
    router = make_router(settings.speed_kmh, settings.detour_factor, None)
    setup = fleet_from_portfolio(portfolio, log.clock.date)
    result = Simulation(
        setup, log.requests, router, settings, Policy(settings.policy), DemandModel(len(log.requests))
    ).run()
    return log, kpis(result)


@pytest.fixture
def live(tmp_path):
    broker = persistent_broker(tmp_path)
    run = LiveRun(broker, tmp_path, speed=200.0, epoch=0.0)  # the epoch is set as the processes start
    yield run
    broker.stop()


def test_fed_requests_are_served_as_in_the_replay_and_bad_ones_refused(live, tmp_path):
    requests = write_log(tmp_path / "requests.csv", 40)
    log, replay = _replay(requests)
    rider = Rider(live.broker)
    intruder = Rider(live.broker, user=("observer", "observer-example-only"), client_id="intruder", topics=())
    serve = live.start_serving("--expected-requests", "40")
    try:
        feeder = live.feed(requests)
        live.wait_simulated(START + dt.timedelta(hours=1, minutes=10))
        # a malformed request from an authorised rider, and a well-formed one from a user the ACL refuses
        rider.publish(
            "rides/request",
            json.dumps(
                {
                    "id": "bad-1",
                    "time": (START + dt.timedelta(hours=1)).isoformat(),
                    "origin": {"lat": 32.99, "lon": 130.44},
                    "passengers": 0,
                }
            ),
        )
        good = {
            "id": "intruder-1",
            "time": (START + dt.timedelta(hours=1, minutes=10)).isoformat(),
            "origin": {"lat": 32.99, "lon": 130.44},
            "destination": {"lat": 32.98, "lon": 130.45},
            "passengers": 1,
        }
        intruder.publish("rides/request", json.dumps(good))
        assert feeder.wait(120) == 0, live.log_text("feed")
        assert wait_until(
            lambda: all(rider.final().get(r.request_id, {}).get("status") in FINAL for r in log.requests), 240
        ), {
            r.request_id: rider.statuses(r.request_id)
            for r in log.requests
            if rider.final().get(r.request_id, {}).get("status") not in FINAL
        }
    finally:
        assert stop(serve) == 0, live.log_text()[-3000:]
        rider.close()
        intruder.close()

    served_share, mean_wait_s = live_figures(rider, log)
    assert served_share == pytest.approx(replay["served_share"], rel=0.10)
    assert mean_wait_s == pytest.approx(replay["mean_wait_s"], rel=0.10)
    for request in log.requests:  # every rider heard, in order, from the vehicle that took them
        statuses = rider.statuses(request.request_id)
        if statuses[-1] == "dropped_off":
            assert statuses[-3:] == ["accepted", "picked_up", "dropped_off"] or statuses[-2:] == [
                "picked_up",
                "dropped_off",
            ]
            accepted = [b for b in rider.messages[request.request_id] if b["status"] == "accepted"]
            assert (
                accepted
                and accepted[0]["pickup_eta"]
                and accepted[-1]["vehicle_id"] == rider.messages[request.request_id][-1]["vehicle_id"]
            )
    # the malformed request: refused on its status topic, with the field named, and logged
    bad = rider.messages["bad-1"]
    assert [b["status"] for b in bad] == ["rejected"] and bad[0]["reason"] == "malformed"
    assert "destination" in bad[0]["message"]
    assert "request 'bad-1' on rides/request refused: field destination" in live.log_text()
    # the unauthorised publisher: dropped by the broker (logged there), never seen by the dispatcher
    assert "intruder-1" not in rider.messages
    assert "Denied PUBLISH from intruder" in live.broker.log_text
    with sqlite3.connect(tmp_path / "dispatch.sqlite") as db:
        assert db.execute("SELECT count(*) FROM dispatch_riders WHERE request_id = 'intruder-1'").fetchone()[0] == 0
        assert (
            db.execute("SELECT count(*) FROM dispatch_riders WHERE status IN ('dropped_off', 'rejected')").fetchone()[0]
            == 41
        )


def test_a_killed_dispatcher_and_a_restarted_broker_lose_no_rider(live, tmp_path):
    requests = write_log(tmp_path / "requests.csv", 40)
    log, _replay_kpis = _replay(requests)
    rider = Rider(live.broker, client_id="test-rider-persistent")
    serve = live.start_serving("--expected-requests", "40")
    restarted = None
    try:
        feeder = live.feed(requests)
        # once some riders are promised a pickup, the dispatcher dies without warning
        assert wait_until(lambda: sum("accepted" in rider.statuses(r.request_id) for r in log.requests) >= 8, 120)
        serve.kill()
        serve.wait(10)
        promised_before = {r.request_id for r in log.requests if "accepted" in rider.statuses(r.request_id)}
        with sqlite3.connect(tmp_path / "dispatch.sqlite") as db:
            stored = {
                row[0] for row in db.execute("SELECT request_id FROM dispatch_riders WHERE vehicle_id IS NOT NULL")
            }
        assert promised_before <= stored  # no rider was told of a pickup the store does not hold
        waiting = {rid for rid in promised_before if rider.final()[rid]["status"] != "dropped_off"}
        assert waiting  # riders were promised, or on board, when it died
        time.sleep(2.0)  # requests keep coming while it is away: the broker queues them
        restarted = live.serve("--expected-requests", "40", name="serve-2")
        assert wait_until(lambda: "restored" in live.log_text("serve-2"), 60), live.log_text("serve-2")
        # then the broker goes away for a while (10 simulated minutes), while requests still come
        live.wait_simulated(START + dt.timedelta(hours=1))
        live.broker.restart(down_s=3.0)
        assert feeder.wait(180) == 0, live.log_text("feed")
        assert wait_until(
            lambda: all(rider.final().get(r.request_id, {}).get("status") in FINAL for r in log.requests), 240
        )
    finally:
        assert stop(restarted) == 0 if restarted is not None else True
        if serve.poll() is None:
            serve.kill()
        rider.close()

    final = rider.final()
    # every request got an answer, and every rider promised a pickup was dropped off
    assert {r.request_id for r in log.requests} <= set(final)
    assert all(final[rid]["status"] == "dropped_off" for rid in promised_before), {
        rid: rider.statuses(rid) for rid in promised_before
    }
    assert all(final[rid]["status"] == "dropped_off" for rid in waiting)
    assert "restored" in live.log_text("serve-2")
    with sqlite3.connect(tmp_path / "dispatch.sqlite") as db:
        assert (
            db.execute(
                "SELECT count(*) FROM dispatch_riders WHERE status NOT IN ('dropped_off', 'rejected')"
            ).fetchone()[0]
            == 0
        )


def test_a_reservation_withdraws_the_called_vehicle_and_a_second_dispatcher_is_refused(live, tmp_path):
    portfolio = load_portfolio(CONFIG)
    shelter_id, shelter = fleet_from_portfolio(portfolio, START.date()).shelters[0]
    call_at = START + dt.timedelta(minutes=40)
    watcher = Rider(
        live.broker,
        user=("ems-controller", "controller-example-only"),
        client_id="test-ems",
        topics=("fleet/taxi-01/state", "fleet/taxi-01/plan"),
    )
    serve = live.start_serving()
    try:
        # one dispatcher per broker: a second one is refused before it takes the first one's session
        second = live.serve("--store", str(tmp_path / "second.sqlite"), name="serve-second")
        assert second.wait(60) == 2
        assert "is already connected" in live.log_text("serve-second") and "dispatcher-arao" in live.log_text(
            "serve-second"
        )
        live.wait_simulated(START + dt.timedelta(minutes=5))
        reservation = Reservation(
            issued=START + dt.timedelta(minutes=5),
            keep_energy_kwh={"taxi-01": 12.0},
            shelter_calls=(ShelterCall(vehicle_id="taxi-01", shelter_id=shelter_id, from_time=call_at),),
        )
        watcher.client.publish("ems/reservations", reservation.model_dump_json(), qos=1, retain=True).wait_for_publish(
            5
        )

        def states():
            with watcher.lock:
                return [VehicleState.model_validate_json(p) for t, p in watcher.raw if t.endswith("/state")]

        def at_shelter():
            return any(
                s.status is VehicleStatus.RESERVED_FOR_SHELTER
                and abs(s.position.lat - shelter.lat) < 1e-6
                and abs(s.position.lon - shelter.lon) < 1e-6
                for s in states()
            )

        assert wait_until(at_shelter, 60), states()[-1]
    finally:
        assert stop(serve) == 0
        watcher.close()
    arrived = next(
        s
        for s in states()
        if s.status is VehicleStatus.RESERVED_FOR_SHELTER and abs(s.position.lat - shelter.lat) < 1e-6
    )
    assert arrived.time <= call_at  # there in time
    assert min(s.soc_kwh for s in states() if s.time >= arrived.time) >= 12.0  # with the energy it must keep
    with watcher.lock:
        plans = [VehiclePlan.model_validate_json(p) for t, p in watcher.raw if t.endswith("/plan")]
    heading = [p for p in plans if p.route and p.route[-1].kind.value == "shelter"]
    assert heading and heading[0].route[-1].shelter_id == shelter_id
    assert "following the reservation" in live.log_text()


def test_what_a_vehicle_reports_sets_the_dispatchers_vehicle_and_a_stale_report_does_not(live, tmp_path):
    from tests.dispatch_live_fixtures import TWIN

    twin = Rider(live.broker, user=TWIN, client_id="twin-taxi-01", topics=())
    watcher = Rider(
        live.broker,
        user=("ems-controller", "controller-example-only"),
        client_id="test-ems",
        topics=("fleet/taxi-01/state",),
    )
    serve = live.start_serving()
    where = {"lat": 32.975, "lon": 130.452}

    def states():
        with watcher.lock:
            return [VehicleState.model_validate_json(p) for t, p in watcher.raw if t.endswith("/state")]

    def report(at: dt.datetime, soc: float) -> None:
        body = {"time": at.isoformat(), "soc": soc, "plugged": False, **where}
        twin.client.publish("arao/taxi-01/telemetry", json.dumps(body), qos=1, retain=True).wait_for_publish(5)

    try:
        live.wait_simulated(START + dt.timedelta(minutes=10))
        assert states()[-1].soc_kwh > 20.0  # the engine's own model (started at 22 kWh)
        sent = live.simulated_now()
        report(sent, 0.4)  # unplugged, 16 kWh, out in the city
        assert wait_until(lambda: any(s.time > sent and abs(s.soc_kwh - 16.0) < 0.5 for s in states()), 30), states()[
            -1
        ]
        taken = next(s for s in states() if s.time > sent and abs(s.soc_kwh - 16.0) < 0.5)
        assert (
            taken.charger_id is None
            and abs(taken.position.lat - where["lat"]) < 0.01
            and abs(taken.position.lon - where["lon"]) < 0.01
        )
        # a report two hours old says nothing about now: the engine's vehicle stands
        stale_sent = live.simulated_now()
        report(stale_sent - dt.timedelta(hours=2), 0.2)
        live.wait_simulated(stale_sent + dt.timedelta(minutes=5))
        assert all(s.soc_kwh > 12.0 for s in states() if s.time > stale_sent)  # never the stale 8 kWh
    finally:
        assert stop(serve) == 0
        twin.close()
        watcher.close()
