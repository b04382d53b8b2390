"""The twin's taxis drive the dispatcher's routes over the real broker (shipped users and ACL):
they move on the dispatcher's movement model, lose energy per km, plug into the charger the
plan names, and a set-point to a charger whose taxi is driving stays at 0 kW."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dispatch.model import Point
from dispatch.motion import RouteMotion, Waypoint, along
from dispatch.router import StraightLineRouter
from drivers.mqtt.link import BrokerSettings, MqttLink
from drivers.sim.clock import ManualClock
from ems.config import load_portfolio
from ems.fleet import Position, RouteStop, StopKind, VehiclePlan
from tests.conftest import REPO, SHIPPED_MOSQUITTO
from tests.control_fixtures import fast_twin_portfolio, wait_until

TOKYO = dt.timezone(dt.timedelta(hours=9))
START = dt.datetime(2026, 4, 15, 6, 0, tzinfo=TOKYO)  # taxi-01 plugged at depot_c01 until its 07:00 duty
CONFIG = REPO / "config/arao.toml"


def user_link(broker, user: str, client_id: str) -> MqttLink:
    name, password = (SHIPPED_MOSQUITTO / f"{user}.credentials").read_text().strip().split(":", 1)
    link = MqttLink(
        BrokerSettings(host=broker.host, port=broker.port, client_id=client_id, username=name, password=password)
    )
    link.start()
    assert link.wait_connected(5)
    return link


def site(portfolio, site_id: str) -> Point:
    s = next(s for s in portfolio.sites if s.id == site_id)
    return Point(s.latitude_deg, s.longitude_deg)


def stop(kind: StopKind, point: Point, eta: dt.datetime, **extra) -> RouteStop:
    return RouteStop(kind=kind, position=Position(lat=point.lat, lon=point.lon), eta=eta, **extra)


class Received:
    def __init__(self):
        self.messages: dict[str, list[dict]] = {}

    def __call__(self, topic: str, payload: bytes) -> None:
        self.messages.setdefault(topic, []).append(json.loads(payload))

    def last(self, topic: str) -> dict | None:
        return (self.messages.get(topic) or [None])[-1]


@pytest.fixture
def running(shipped_broker, twin_factory):
    clock = ManualClock(START)
    runner = twin_factory(CONFIG, shipped_broker, clock=clock, portfolio=fast_twin_portfolio())
    return runner.twin, clock, shipped_broker


def settle(twin, clock, seconds: float) -> dt.datetime:
    """Advance the simulated clock and wait until the twin has stepped to it."""
    now = clock.advance(seconds)
    assert wait_until(lambda: twin.last_step is not None and twin.last_step >= now, 5)
    return now


def test_a_taxi_drives_the_published_route_and_plugs_in_where_the_plan_says(running):
    twin, clock, broker = running
    portfolio = load_portfolio(CONFIG)
    settings = portfolio.dispatch
    router = StraightLineRouter(settings.speed_kmh, settings.detour_factor)
    taxi = twin.vehicles["taxi-01"]
    depot, hall, centre, north = (
        site(portfolio, s) for s in ("taxi_depot", "city_hall", "cultural_centre", "shelter_north")
    )
    assert taxi.charger_id == "depot_c01" and taxi.position == (depot.lat, depot.lon)
    soc_start_kwh = taxi.soc_kwh

    dispatcher = user_link(broker, "dispatcher", "dispatcher-test")
    controller = user_link(broker, "controller", "controller-test")
    watcher = Received()
    controller.subscribe("arao/+/ack", watcher)
    controller.subscribe("arao/+/telemetry", watcher)
    now = clock.now()
    pickup_eta = now + dt.timedelta(seconds=router.leg(depot, hall)[1])
    plan = VehiclePlan(
        vehicle_id="taxi-01",
        issued=now,
        route=(
            stop(StopKind.PICKUP, hall, pickup_eta, rider_ids=("r1",)),
            stop(StopKind.DROPOFF, centre, pickup_eta + dt.timedelta(minutes=10), rider_ids=("r1",)),
            stop(
                StopKind.SHELTER,
                north,
                pickup_eta + dt.timedelta(minutes=30),
                charger_id="shelter_north_v2h1",
                shelter_id="shelter_north",
            ),
        ),
    )
    dispatcher.publish("fleet/taxi-01/plan", plan.model_dump_json(), retain=True).wait_for_publish(2)
    assert wait_until(lambda: "taxi-01" in twin.followers, 5), twin.plans_rejected
    # the same movement model as the dispatcher: legs at the router's times, dwell at riders' stops
    expected = RouteMotion(
        router,
        0.15,
        depot,
        now.timestamp(),
        [Waypoint(hall, settings.dwell_s, pickup_eta.timestamp()), Waypoint(centre, settings.dwell_s), Waypoint(north)],
    )

    halfway_s = router.leg(depot, hall)[1] / 2
    settle(twin, clock, halfway_s)
    assert taxi.charger_id is None and twin.chargers["depot_c01"].vehicle is None
    assert taxi.position == pytest.approx(tuple(along(depot, hall, 0.5)))
    assert soc_start_kwh - taxi.soc_kwh == pytest.approx(router.leg(depot, hall)[0] / 2 * 0.15)

    # the energy manager writes to the charger the taxi left: it stays at 0 kW, the taxi gains nothing
    soc_driving_kwh = taxi.soc_kwh
    controller.publish("arao/depot_c01/command", json.dumps({"id": "drive-1", "power_kw": -6.0}))
    assert wait_until(lambda: watcher.last("arao/depot_c01/ack") is not None, 5)
    assert watcher.last("arao/depot_c01/ack")["applied_kw"] == 0.0
    settle(twin, clock, 1.0)
    assert twin.chargers["depot_c01"].power_kw == 0.0
    assert taxi.soc_kwh <= soc_driving_kwh

    settle(twin, clock, expected.end_s - clock.now().timestamp() + 1.0)
    assert taxi.charger_id == "shelter_north_v2h1" and twin.chargers["shelter_north_v2h1"].vehicle is taxi
    assert taxi.position == (north.lat, north.lon)
    assert taxi.odometer_km == pytest.approx(expected.total_km)
    assert soc_start_kwh - taxi.soc_kwh == pytest.approx(expected.total_km * 0.15)
    for device in twin.mqtt_devices.values():
        device.publish()
    assert wait_until(
        lambda: (watcher.last("arao/taxi-01/telemetry") or {}).get("charger_id") == "shelter_north_v2h1", 5
    )
    telemetry = watcher.last("arao/taxi-01/telemetry")
    assert (telemetry["lat"], telemetry["lon"]) == pytest.approx((north.lat, north.lon))
    assert telemetry["soc"] == pytest.approx(taxi.soc_kwh / 40.0, abs=1e-4)

    # plugged at the shelter, the energy manager's set-point drives its V2H point
    soc_plugged_kwh = taxi.soc_kwh
    controller.publish("arao/shelter_north_v2h1/command", json.dumps({"id": "v2h-1", "power_kw": 6.0}))
    assert wait_until(lambda: watcher.last("arao/shelter_north_v2h1/ack") is not None, 5)
    assert watcher.last("arao/shelter_north_v2h1/ack")["applied_kw"] == pytest.approx(6.0)
    settle(twin, clock, 600)
    assert soc_plugged_kwh - taxi.soc_kwh == pytest.approx(6.0 * 600 / 3600 / 0.95, rel=1e-3)
    dispatcher.stop()
    controller.stop()


def test_bad_plans_are_refused_by_name_and_the_route_driven_stays(running):
    twin, clock, broker = running
    portfolio = load_portfolio(CONFIG)
    hall = site(portfolio, "city_hall")
    dispatcher = user_link(broker, "dispatcher", "dispatcher-test")
    now = clock.now()
    good = VehiclePlan(
        vehicle_id="taxi-02", issued=now, route=(stop(StopKind.REBALANCE, hall, now + dt.timedelta(minutes=5)),)
    )
    dispatcher.publish("fleet/taxi-02/plan", good.model_dump_json()).wait_for_publish(2)
    assert wait_until(lambda: "taxi-02" in twin.followers, 5)
    bad = {
        "fleet/taxi-02/plan": [
            b"{not json",
            good.model_copy(update={"vehicle_id": "taxi-03"}).model_dump_json(),
            good.model_copy(update={"issued": now - dt.timedelta(hours=1)}).model_dump_json(),
            good.model_copy(update={"issued": now - dt.timedelta(minutes=1)}).model_dump_json(),
            json.loads(good.model_dump_json())
            | {
                "route": [
                    {
                        "kind": "charger",
                        "position": {"lat": 33.0, "lon": 130.4},
                        "eta": now.isoformat(),
                        "charger_id": "no_such_charger",
                    }
                ]
            },
        ],
        "fleet/taxi-99/plan": [good.model_copy(update={"vehicle_id": "taxi-99"}).model_dump_json()],
    }
    for topic, payloads in bad.items():
        for payload in payloads:
            body = json.dumps(payload) if isinstance(payload, dict) else payload
            dispatcher.publish(topic, body).wait_for_publish(2)
    assert wait_until(lambda: len(twin.plans_rejected) == 6, 5), twin.plans_rejected
    reasons = " | ".join(reason for _topic, reason in twin.plans_rejected)
    for words in (
        "(root)",
        "vehicle_id",
        "more than 900 s before now",
        "older than the plan being driven",
        "no_such_charger",
        "unknown vehicle 'taxi-99'",
    ):
        assert words in reasons
    assert twin.followers["taxi-02"].stops == good.route

    # a user the ACL does not let publish plans (the observer) moves no taxi
    observer = user_link(broker, "observer", "observer-test")
    intruder = VehiclePlan(
        vehicle_id="taxi-04", issued=now, route=(stop(StopKind.REBALANCE, hall, now + dt.timedelta(minutes=5)),)
    )
    observer.publish("fleet/taxi-04/plan", intruder.model_dump_json()).wait_for_publish(2)
    dispatcher.publish(
        "fleet/taxi-05/plan", intruder.model_copy(update={"vehicle_id": "taxi-05"}).model_dump_json()
    ).wait_for_publish(2)
    assert wait_until(lambda: "taxi-05" in twin.followers, 5)
    assert "taxi-04" not in twin.followers
    for link in (dispatcher, observer):
        link.stop()


def test_without_a_plan_the_taxis_keep_their_duties():
    from simulations.twin import Twin, TwinOptions

    clock = ManualClock(START)
    twin = Twin(load_portfolio(CONFIG), CONFIG, TwinOptions(serve_mqtt=False), clock=clock)
    taxi = twin.vehicles["taxi-01"]
    for _ in range(90):  # to 07:30: its 07:00 duty took it away
        twin.step(clock.advance(60), 60)
    assert taxi.charger_id is None and not twin.followers


def test_a_route_reissued_between_two_steps_loses_no_distance():
    """The dispatcher re-publishes every batch, faster than the twin steps at high speed: the
    taxi still covers the ground of the time between."""
    from simulations.twin import Twin, TwinOptions

    portfolio = load_portfolio(CONFIG)
    settings = portfolio.dispatch
    router = StraightLineRouter(settings.speed_kmh, settings.detour_factor)
    clock = ManualClock(START)
    twin = Twin(portfolio, CONFIG, TwinOptions(serve_mqtt=False), clock=clock)
    depot, north = site(portfolio, "taxi_depot"), site(portfolio, "shelter_north")
    km, travel_s = router.leg(depot, north)
    assert travel_s > 150
    for seconds in (0, 30, 60, 90):  # four plans, one step at the end
        now = START + dt.timedelta(seconds=seconds)
        clock.advance(30 if seconds else 0)
        twin.follow_plan(
            VehiclePlan(
                vehicle_id="taxi-03",
                issued=now,
                route=(
                    stop(
                        StopKind.SHELTER, north, START + dt.timedelta(seconds=travel_s), shelter_id="north_school_gym"
                    ),
                ),
            ),
            now,
        )
    twin.step(clock.advance(30), 30)
    taxi = twin.vehicles["taxi-03"]
    assert taxi.position == pytest.approx(tuple(along(depot, north, 120 / travel_s)))
    assert taxi.odometer_km == pytest.approx(km * 120 / travel_s)
    twin.step(clock.advance(travel_s), travel_s)
    assert taxi.charger_id == "shelter_north_v2h1"  # a shelter stop naming no charger: its first free V2H point


def test_an_empty_route_after_arriving_at_a_shelter_leaves_the_taxi_plugged_in_there():
    """The dispatcher's next plan for a taxi at its shelter has no stops left: the taxi that
    arrived since the twin's last step still plugs in there."""
    from simulations.twin import Twin, TwinOptions

    portfolio = load_portfolio(CONFIG)
    router = StraightLineRouter(portfolio.dispatch.speed_kmh, portfolio.dispatch.detour_factor)
    clock = ManualClock(START)
    twin = Twin(portfolio, CONFIG, TwinOptions(serve_mqtt=False), clock=clock)
    depot, central = site(portfolio, "taxi_depot"), site(portfolio, "shelter_central")
    travel_s = router.leg(depot, central)[1]
    twin.follow_plan(
        VehiclePlan(
            vehicle_id="taxi-08",
            issued=START,
            route=(
                stop(
                    StopKind.SHELTER,
                    central,
                    START + dt.timedelta(seconds=travel_s),
                    shelter_id="central_community_hall",
                ),
            ),
        ),
        START,
    )
    arrived = clock.advance(travel_s + 10)  # no twin step in between
    twin.follow_plan(VehiclePlan(vehicle_id="taxi-08", issued=arrived, route=()), arrived)
    twin.step(clock.advance(5), 5)
    taxi = twin.vehicles["taxi-08"]
    assert taxi.position == (central.lat, central.lon)
    assert taxi.charger_id == "shelter_central_v2h1" and twin.chargers["shelter_central_v2h1"].vehicle is taxi
