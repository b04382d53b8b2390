"""Rebalancing as a transport problem: stations at the k-median of forecast demand, idle
vehicles sent to free stations with the least km in total, moves a vehicle could not come back
from never made; and the facility-location rebalancer moving only where the saved pickup km pay."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatch.clock import ServiceClock
from dispatch.fleet import ChargerSpec, FleetSetup, IdleVehicle, VehicleSpec, idle_moves
from dispatch.model import StopKind
from dispatch.rebalance import Coverer, Mover, station_moves, transport_moves, weighted_k_median
from dispatch.router import StraightLineRouter
from ems.config.dispatch import DispatchSettings
from tests.dispatch_fixtures import CENTRE, DEPOT, east, north

ROUTER = StraightLineRouter(30.0, 1.3)


def km(a, b) -> float:
    return ROUTER.leg(a, b)[0]


def mover(vehicle_id, at, reachable=lambda p: True) -> Mover:
    return Mover(vehicle_id, at, at, reachable)


def test_weighted_k_median_puts_one_station_in_each_cluster_and_follows_the_weight():
    west_cluster = [east(CENTRE, -3.0 + d) for d in (-0.1, 0.0, 0.1)]
    east_cluster = [east(CENTRE, 3.0 + d) for d in (-0.1, 0.0, 0.1)]
    points = west_cluster + east_cluster
    chosen = weighted_k_median(points, [1.0] * 6, 2, km)
    assert sorted(chosen) == [1, 4]  # the middle of each cluster
    # one station only: it goes to the cluster that holds the demand
    assert weighted_k_median(points, [1, 1, 1, 10, 10, 10], 1, km) == [4]


def test_idle_vehicles_take_the_free_stations_with_least_km_in_total_not_greedily():
    s1, s2 = CENTRE, east(CENTRE, 2.0)
    a, b = east(CENTRE, 1.1), east(CENTRE, 2.5)  # a is nearer s2, but b is much nearer s2
    moves = station_moves([mover("a", a), mover("b", b)], [s1, s2], [a, b], km)
    assert moves["a"].point == s1 and moves["b"].point == s2
    assert all(m.kind is StopKind.REBALANCE for m in moves.values())


def test_a_vehicle_at_a_station_stays_and_a_held_station_is_not_taken():
    s1, s2 = CENTRE, east(CENTRE, 2.0)
    standing = east(CENTRE, 0.1)  # within the arrival radius of s1
    away = east(CENTRE, -1.0)
    moves = station_moves([mover("standing", standing), mover("away", away)], [s1, s2], [standing, away], km)
    assert "standing" not in moves
    assert moves["away"].point == s2  # s1 is held, though nearer


def test_no_vehicle_is_sent_to_a_station_it_could_not_come_back_from():
    near, far = east(CENTRE, 1.0), east(CENTRE, 6.0)
    cautious = mover("v", CENTRE, reachable=lambda p: km(CENTRE, p) < 3.0)
    assert station_moves([cautious], [far, near], [], km)["v"].point == near
    stuck = mover("v", CENTRE, reachable=lambda p: False)
    assert station_moves([stuck], [far, near], [], km) == {}


def test_transport_moves_a_vehicle_only_when_the_pickup_km_saved_pay_for_the_drive():
    hotspot = north(CENTRE, 2.0)
    spot = [(hotspot, 1.0)]
    busy = transport_moves([mover("v", CENTRE)], [], spot, 4.0, 0.25, 4.0, 3.0, km)
    assert busy["v"].point == hotspot
    # a trickle of demand does not repay 2.6 road km of moving
    quiet = transport_moves([mover("v", CENTRE)], [], spot, 0.05, 0.25, 4.0, 3.0, km)
    assert quiet == {}
    # a vehicle about to be free at the hotspot covers it: nobody needs to move
    covered = transport_moves([mover("v", CENTRE)], [Coverer(hotspot, 0.25)], spot, 1.0, 0.25, 4.0, 3.0, km)
    assert covered == {}


@pytest.mark.parametrize("method", ["transport", "stations"])
def test_fleet_rules_send_an_idle_vehicle_toward_demand_only_if_it_can_come_back(method):
    hours = ((8 * 3600.0, 18 * 3600.0),)
    specs = (VehicleSpec("v1", 4, 40.0, 0.15, 4.0, 38.0, 5.0, 20.0, "home", hours),)
    setup = FleetSetup(specs, (ChargerSpec("home", DEPOT, 6.0),), DEPOT, ServiceClock(dt.date(2026, 4, 15)))
    settings = DispatchSettings(rebalance_method=method)
    now = 10 * 3600.0

    class Demand:
        def rate_per_h(self, time_s):
            return 20.0

        def mean_rate_per_h(self):
            return 10.0

        def hotspots(self, time_s):
            return [(north(DEPOT, 6.0), 1.0)]

    full = IdleVehicle(specs[0], DEPOT, 20.0, now - 3600.0, None, None)
    moves = idle_moves([full], now, setup, settings, ROUTER, set(), Demand(), None)
    assert moves["v1"].kind is StopKind.REBALANCE and km(moves["v1"].point, north(DEPOT, 6.0)) < 0.01
    # 11 kWh: above the charge-now level (10.8, floor 9 plus an hour's driving), but 7.8 road km
    # there and 7.8 back to the only charger at 0.15 kWh/km would leave 8.66 kWh: it stays
    low = IdleVehicle(specs[0], DEPOT, 11.0, now - 3600.0, None, None)
    assert "v1" not in idle_moves([low], now, setup, settings, ROUTER, set(), Demand(), None)


def test_a_station_is_filled_only_when_its_value_pays_for_the_drive():
    station = east(CENTRE, 2.0)
    drive_km = km(CENTRE, station)
    assert station_moves([mover("v", CENTRE)], [station], [], km, [drive_km + 0.5])["v"].point == station
    assert station_moves([mover("v", CENTRE)], [station], [], km, [drive_km - 0.5]) == {}


def test_one_vehicle_per_station_sends_a_second_vehicle_standing_at_a_station_to_a_free_one():
    s1, s2 = CENTRE, east(CENTRE, 2.0)
    first, second = east(CENTRE, 0.05), east(CENTRE, -0.05)  # both within the arrival radius of s1
    movers = [mover("first", first), mover("second", second)]
    # by default a vehicle at a station stays, however many stand there
    assert station_moves(movers, [s1, s2], [first, second], km) == {}
    moves = station_moves(movers, [s1, s2], [], km, one_per_station=True)
    assert list(moves) == ["second"] and moves["second"].point == s2
    # a station held by a vehicle that is not moved now (idle too briefly) sends both on
    settled = east(CENTRE, 0.1)
    both = station_moves(movers, [s1, s2, north(CENTRE, 2.0)], [settled], km, one_per_station=True)
    assert set(both) == {"first", "second"} and all(km(m.point, s1) > 0.3 for m in both.values())


class _ThreeSpots:
    """Demand at west, middle (twice the weight) and east, 2 km apart on a line."""

    def rate_per_h(self, time_s):
        return 20.0

    def mean_rate_per_h(self):
        return 10.0

    def hotspots(self, time_s):
        return [(east(DEPOT, -2.0), 1.0), (DEPOT, 2.0), (east(DEPOT, 2.0), 1.0)]


def _fleet(n: int) -> FleetSetup:
    hours = ((8 * 3600.0, 18 * 3600.0),)
    specs = tuple(VehicleSpec(f"v{i}", 4, 40.0, 0.15, 4.0, 38.0, 5.0, 30.0, "home", hours) for i in range(n))
    return FleetSetup(specs, (ChargerSpec("home", DEPOT, 6.0),), DEPOT, ServiceClock(dt.date(2026, 4, 15)))


def test_fleet_rules_move_a_second_vehicle_off_a_shared_station_with_one_vehicle_per_station():
    setup, now = _fleet(3), 10 * 3600.0
    west = east(DEPOT, -2.0)
    idle = [IdleVehicle(setup.vehicles[i], west, 30.0, now - 3600.0, None, None) for i in range(2)]
    stations = DispatchSettings(rebalance_method="stations")
    assert idle_moves(idle, now, setup, stations, ROUTER, set(), _ThreeSpots(), None) == {}
    one_each = stations.model_copy(update={"one_vehicle_per_station": True})
    moves = idle_moves(idle, now, setup, one_each, ROUTER, set(), _ThreeSpots(), None)
    assert len(moves) == 1 and km(next(iter(moves.values())).point, west) > 1.0


def test_free_station_count_places_the_free_vehicles_at_the_best_points_they_can_hold():
    # three taxis, one on a trip: the fleet's three stations are the three spots, and the two idle
    # taxis at west and east both stand at one; with as many stations as free taxis (two) the
    # heavy middle spot is a station and one of them goes there
    setup, now = _fleet(3), 10 * 3600.0
    west, east_spot = east(DEPOT, -2.0), east(DEPOT, 2.0)
    idle = [
        IdleVehicle(setup.vehicles[0], west, 30.0, now - 3600.0, None, None),
        IdleVehicle(setup.vehicles[1], east_spot, 30.0, now - 3600.0, None, None),
    ]
    fleet_k = DispatchSettings(rebalance_method="stations", one_vehicle_per_station=True)
    assert idle_moves(idle, now, setup, fleet_k, ROUTER, set(), _ThreeSpots(), None) == {}
    free_k = fleet_k.model_copy(update={"station_count": "free"})
    moves = idle_moves(idle, now, setup, free_k, ROUTER, set(), _ThreeSpots(), None)
    assert len(moves) == 1 and km(next(iter(moves.values())).point, DEPOT) < 0.01
