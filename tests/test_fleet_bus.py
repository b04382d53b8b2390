"""The fleet contract over a real Mosquitto: states and plans in, reservations out, bad messages out."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pytest

from ems.config import load_portfolio
from ems.control.controller import Controller
from ems.control.fleetbus import FleetBus
from ems.dispatching.bus import mqtt_fleet_publisher
from ems.fleet import (
    ChargeCall,
    ChargingWindow,
    Reservation,
    ShelterCall,
    VehiclePlan,
    VehicleStatus,
)
from tests.control_fixtures import mqtt_link, wait_until
from tests.fleet_fixtures import NOW, vehicle_state


@pytest.fixture
def pair(mosquitto):
    ems_link, dispatcher_link = mqtt_link(mosquitto, "ems-controller"), mqtt_link(mosquitto, "dispatcher")
    bus = FleetBus(ems_link, {"taxi-01", "taxi-02"}, lambda: NOW)
    publisher = mqtt_fleet_publisher(dispatcher_link)
    time.sleep(0.2)  # subscriptions in place
    yield bus, publisher, dispatcher_link
    ems_link.stop()
    dispatcher_link.stop()


def test_states_and_plans_cross_as_the_same_types(pair):
    bus, publisher, _link_ = pair
    state = vehicle_state()
    plan = VehiclePlan(
        vehicle_id="taxi-02",
        issued=NOW,
        windows=(
            ChargingWindow(
                charger_id="depot_c02",
                plug_in=NOW,
                plug_out=NOW + dt.timedelta(hours=3),
                departure_energy_kwh=25.0,
                trip_energy_kwh=12.0,
            ),
        ),
    )
    publisher.publish_state(state)
    publisher.publish_plan(plan)
    assert wait_until(lambda: "taxi-01" in bus.states and "taxi-02" in bus.plans)
    assert bus.states["taxi-01"] == state
    assert bus.plans["taxi-02"] == plan

    reservation = Reservation(issued=NOW, keep_energy_kwh={"taxi-01": 18.0})
    bus.publish_reservation(reservation)
    assert wait_until(lambda: publisher.reservation is not None)
    assert publisher.reservation == reservation


def test_a_reservation_with_charge_calls_crosses_and_an_old_one_still_parses(pair):
    bus, publisher, link = pair
    later = NOW + dt.timedelta(hours=4)
    reservation = Reservation(
        issued=NOW,
        keep_energy_kwh={"taxi-01": 6.5},
        shelter_calls=(ShelterCall(vehicle_id="taxi-01", shelter_id="north_school_gym", from_time=later),),
        charge_calls=(
            ChargeCall(vehicle_id="taxi-01", site_id="taxi_depot", from_time=NOW, until_time=later, target_kwh=30.0),
        ),
    )
    bus.publish_reservation(reservation)
    assert wait_until(lambda: publisher.reservation == reservation)
    # a publisher that predates charge calls: its message still parses, with none
    old = {"issued": NOW.isoformat(), "keep_energy_kwh": {"taxi-02": 12.0}, "shelter_calls": []}
    link.publish("ems/reservations", json.dumps(old).encode(), retain=True)
    assert wait_until(
        lambda: publisher.reservation is not None and publisher.reservation.keep_energy_kwh == {"taxi-02": 12.0}
    )
    assert publisher.reservation.charge_calls == ()
    # and a reservation without charge calls is sent exactly as before the addition
    assert set(json.loads(Reservation(issued=NOW, keep_energy_kwh={"taxi-02": 12.0}).model_dump_json())) == set(old)


@pytest.mark.parametrize(
    "topic,payload,reason",
    [
        ("fleet/taxi-01/state", b"{not json", "field (payload)"),
        (
            "fleet/taxi-01/state",
            json.dumps(vehicle_state().model_dump(mode="json") | {"soc_kwh": "full"}).encode(),
            "field soc_kwh",
        ),
        (
            "fleet/taxi-01/state",
            json.dumps(vehicle_state().model_dump(mode="json") | {"time": "2026-04-15T09:00:00"}).encode(),
            "field time",
        ),
        (
            "fleet/taxi-01/state",
            vehicle_state(vehicle="taxi-02").model_dump_json().encode(),
            "does not match the topic",
        ),
        ("fleet/taxi-99/state", vehicle_state(vehicle="taxi-99").model_dump_json().encode(), "unknown vehicle"),
        ("fleet/taxi-01/state", vehicle_state(at=NOW - dt.timedelta(hours=2)).model_dump_json().encode(), "stale"),
        ("fleet/taxi-01/state", b"{" + b" " * 70000 + b"}", "exceeds"),
    ],
)
def test_bad_fleet_messages_are_rejected_and_the_last_good_state_kept(pair, caplog, topic, payload, reason):
    bus, publisher, link = pair
    good = vehicle_state(soc=21.5, at=NOW - dt.timedelta(minutes=1))
    publisher.publish_state(good)
    assert wait_until(lambda: "taxi-01" in bus.states)
    with caplog.at_level(logging.WARNING, logger="ems.control.fleetbus"):
        link.publish(topic, payload)
        assert wait_until(lambda: len(bus.rejected) > 0)
    assert reason in bus.rejected[-1][1] and bus.rejected[-1][0] == topic
    assert topic in caplog.text
    assert bus.states["taxi-01"] == good


def test_an_older_state_does_not_replace_a_newer_one(pair):
    bus, publisher, _link_ = pair
    publisher.publish_state(vehicle_state(soc=30.0, at=NOW))
    assert wait_until(lambda: "taxi-01" in bus.states)
    publisher.publish_state(vehicle_state(soc=10.0, at=NOW - dt.timedelta(minutes=5)))
    assert wait_until(lambda: len(bus.rejected) > 0)
    assert bus.states["taxi-01"].soc_kwh == 30.0


class _Plans:
    """A stand-in holding what a FleetBus would have received (the bus itself is tested above)."""

    def __init__(self, plans, states):
        self.plans, self.states = plans, states


def test_the_controller_plans_on_the_dispatchers_windows_and_state():
    portfolio = load_portfolio("config/arao.toml")
    start = NOW.replace(hour=9)
    window = ChargingWindow(
        charger_id="depot_c05",
        plug_in=start + dt.timedelta(hours=1),
        plug_out=start + dt.timedelta(hours=4),
        departure_energy_kwh=40.0,
        trip_energy_kwh=20.0,
    )
    fleet = _Plans(
        {"taxi-01": VehiclePlan(vehicle_id="taxi-01", issued=start, windows=(window,))},
        # on the road until its window: a state saying it is charging now would re-plan it as back early
        {
            "taxi-01": vehicle_state(soc=12.0, at=start).model_copy(
                update={"status": VehicleStatus.ON_TRIP, "charger_id": None}
            )
        },
    )
    controller = Controller(
        portfolio, "config/arao.toml", None, None, lambda: start, inputs="profiles", horizon_hours=12, fleet=fleet
    )
    import pandas as pd

    problem = controller._problem(pd.Timestamp(start))
    taxi = next(e for e in problem.evs if e.id == "taxi-01")
    assert taxi.initial_soc_kwh == 12.0  # no charger reading: the dispatcher's state
    plugged = [t for t, c in enumerate(taxi.charger_id) if c is not None]
    assert plugged == list(range(2, 8)) and set(taxi.charger_id[2:8]) == {"depot_c05"}
    assert (8, 38.0) in taxi.departure_targets  # capped at the battery's soc_max: 0.95 x 40 kWh
