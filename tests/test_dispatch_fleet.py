"""Fleet rules: charging, depot return, repositioning, and the plan published to the energy manager."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatch.clock import ServiceClock
from dispatch.fleet import ChargerSpec, FleetSetup, IdleVehicle, VehicleSpec, floor_kwh, idle_moves, vehicle_plan
from dispatch.model import Point, StopKind
from dispatch.router import StraightLineRouter
from ems.config.dispatch import DispatchSettings
from ems.fleet import Reservation, ShelterCall, VehiclePlan
from tests.dispatch_fixtures import CENTRE, DEPOT, east, north

SETTINGS = DispatchSettings()
ROUTER = StraightLineRouter(SETTINGS.speed_kmh, SETTINGS.detour_factor)
CLOCK = ServiceClock(dt.date(2026, 4, 15))
CHARGERS = (ChargerSpec("near", east(CENTRE, 0.5), 6.0), ChargerSpec("home", DEPOT, 6.0))
HOURS = ((8 * 3600.0, 18 * 3600.0),)


def spec(vehicle_id="v1", home="home") -> VehicleSpec:
    return VehicleSpec(vehicle_id, 4, 40.0, 0.15, 4.0, 38.0, 5.0, 20.0, home, HOURS)


SETUP = FleetSetup((spec(),), CHARGERS, DEPOT, CLOCK)


class Flat:
    """A forecast with one hotspot and constant demand."""

    def __init__(self, hotspot: Point):
        self.hotspot = hotspot

    def rate_per_h(self, time_s):
        return 10.0

    def mean_rate_per_h(self):
        return 10.0

    def hotspots(self, time_s):
        return [(self.hotspot, 1.0)]


def idle(soc_kwh, at=CENTRE, idle_since_s=9 * 3600.0, **kwargs) -> IdleVehicle:
    return IdleVehicle(spec(), at, soc_kwh, idle_since_s, None, None, **kwargs)


def test_low_vehicle_goes_to_the_nearest_free_charger():
    now = 10 * 3600.0
    moves = idle_moves([idle(8.0)], now, SETUP, SETTINGS, ROUTER, set(), None, None)
    assert moves["v1"].kind is StopKind.CHARGER and moves["v1"].place_id == "near"
    moves = idle_moves([idle(8.0)], now, SETUP, SETTINGS, ROUTER, {"near"}, None, None)
    assert moves["v1"].place_id == "home"


def test_vehicle_with_enough_energy_repositions_toward_demand_and_then_stays():
    hotspot = north(CENTRE, 2.0)
    now = 10 * 3600.0
    moves = idle_moves([idle(30.0)], now, SETUP, SETTINGS, ROUTER, set(), Flat(hotspot), None)
    assert moves["v1"].kind is StopKind.REBALANCE and moves["v1"].point == hotspot
    assert idle_moves([idle(30.0, at=hotspot)], now, SETUP, SETTINGS, ROUTER, set(), Flat(hotspot), None) == {}
    # just idle: it waits before moving
    assert (
        idle_moves([idle(30.0, idle_since_s=now - 10)], now, SETUP, SETTINGS, ROUTER, set(), Flat(hotspot), None) == {}
    )


def test_after_hours_the_vehicle_returns_to_its_home_charger():
    moves = idle_moves([idle(30.0)], 19 * 3600.0, SETUP, SETTINGS, ROUTER, set(), None, None)
    assert moves["v1"].kind is StopKind.DEPOT and moves["v1"].place_id == "home"


def test_keep_energy_raises_the_floor():
    reservation = Reservation(issued=CLOCK.to_datetime(0), keep_energy_kwh={"v1": 25.0})
    assert floor_kwh(spec(), None) == pytest.approx(9.0)
    assert floor_kwh(spec(), reservation) == pytest.approx(25.0)
    # with 20 kWh and 25 to keep, the idle vehicle is sent to charge
    moves = idle_moves([idle(20.0)], 10 * 3600.0, SETUP, SETTINGS, ROUTER, set(), None, reservation)
    assert moves["v1"].kind is StopKind.CHARGER


def test_plan_of_a_charging_vehicle_has_its_window_and_the_night_window():
    now = 12 * 3600.0
    plan = vehicle_plan(spec(), now, 16.0, now, "near", SETUP, SETTINGS, None)
    first, night = plan.windows
    target_kwh = SETTINGS.charge_target_fraction * 40.0
    assert first.charger_id == "near"
    assert (first.plug_out - first.plug_in).total_seconds() == pytest.approx((target_kwh - 16.0) / (6.0 * 0.95) * 3600)
    assert night.charger_id == "home"
    assert night.plug_in == CLOCK.to_datetime(18 * 3600.0)
    assert night.plug_out == CLOCK.to_datetime(8 * 3600.0 + 86400.0)
    day_kwh = 10 * SETTINGS.expected_km_per_hour * 0.15
    assert night.departure_energy_kwh == pytest.approx(9.0 + day_kwh)
    assert VehiclePlan.model_validate_json(plan.model_dump_json()) == plan


def test_shelter_call_is_a_reservation_field_the_fleet_understands():
    from dispatch.fleet import shelter_call

    call_time = CLOCK.to_datetime(14 * 3600.0)
    reservation = Reservation(
        issued=CLOCK.to_datetime(0),
        shelter_calls=(ShelterCall(vehicle_id="v1", shelter_id="north", from_time=call_time),),
    )
    assert shelter_call(spec(), reservation, CLOCK) == ("north", 14 * 3600.0)
    assert shelter_call(spec("v2"), reservation, CLOCK) is None


class Peaky(Flat):
    def __init__(self, hotspot: Point, rate: float):
        super().__init__(hotspot)
        self.rate = rate

    def rate_per_h(self, time_s):
        return self.rate


def test_vehicle_short_of_its_next_hours_charges_when_demand_is_low_not_at_the_peak():
    # 11 kWh: above the low threshold (10 kWh) but below floor 9 + 2 h x 12 km/h x 0.15 = 12.6 kWh
    short = idle(11.0, at=north(CENTRE, 2.0))
    now = 10 * 3600.0
    quiet = idle_moves([short], now, SETUP, SETTINGS, ROUTER, set(), Peaky(north(CENTRE, 2.0), 5.0), None)
    assert quiet["v1"].kind is StopKind.CHARGER
    busy = idle_moves([short], now, SETUP, SETTINGS, ROUTER, set(), Peaky(north(CENTRE, 2.0), 20.0), None)
    assert busy == {}  # at the peak it stays at its hotspot and serves
    # plenty of energy: never sent to charge
    assert (
        idle_moves(
            [idle(30.0, at=north(CENTRE, 2.0))],
            now,
            SETUP,
            SETTINGS,
            ROUTER,
            set(),
            Peaky(north(CENTRE, 2.0), 5.0),
            None,
        )
        == {}
    )


class TwoHotspots:
    """Equal demand at two places 2 km apart, ``rate`` requests per hour in all."""

    def __init__(self, a: Point, b: Point, rate: float):
        self.a, self.b, self.rate = a, b, rate

    def rate_per_h(self, time_s):
        return self.rate

    def mean_rate_per_h(self):
        return self.rate

    def hotspots(self, time_s):
        return [(self.a, 0.5), (self.b, 0.5)]


def parked(vehicle_id: str, at: Point, idle_since_s: float) -> IdleVehicle:
    return IdleVehicle(spec(vehicle_id), at, 30.0, idle_since_s, None, None)


def test_second_idle_vehicle_at_a_hotspot_moves_to_the_uncovered_one_when_demand_pays_for_the_drive():
    a, b = CENTRE, north(CENTRE, 2.0)
    now = 10 * 3600.0
    pair = [parked("v1", a, 9 * 3600.0), parked("v2", a, 9 * 3600.0)]
    # r requests/h: half an hour's r/2 requests, half of them at b, each 2.6 road km nearer, priced
    # like the assignment prices them (1 + wait_weight = 4 per km): worth 2.6 r km against a 2.6 km drive
    moves = idle_moves(pair, now, SETUP, SETTINGS, ROUTER, set(), TwoHotspots(a, b, 10.0), None)
    assert len(moves) == 1
    (stop,) = moves.values()
    assert stop.kind is StopKind.REBALANCE and stop.point == b
    # half a request an hour: the drive costs more than the pickups it shortens, so both stay
    assert idle_moves(pair, now, SETUP, SETTINGS, ROUTER, set(), TwoHotspots(a, b, 0.5), None) == {}


def test_rebalancing_prices_the_riders_wait_as_the_assignment_does():
    a, b = CENTRE, north(CENTRE, 2.0)
    now = 10 * 3600.0
    pair = [parked("v1", a, 9 * 3600.0), parked("v2", a, 9 * 3600.0)]
    demand = TwoHotspots(a, b, 3.0)  # 3 requests/h: 1.95 pickup km saved, 7.8 wait-weighted, 2.6 driven
    assert len(idle_moves(pair, now, SETUP, SETTINGS, ROUTER, set(), demand, None)) == 1
    km_only = SETTINGS.model_copy(update={"wait_weight": 0.0})
    assert idle_moves(pair, now, SETUP, km_only, ROUTER, set(), demand, None) == {}


def test_vehicle_just_idle_at_the_other_hotspot_covers_it():
    a, b = CENTRE, north(CENTRE, 2.0)
    now = 10 * 3600.0
    vehicles = [parked("v1", a, 9 * 3600.0), parked("v2", a, 9 * 3600.0), parked("v3", b, now - 10.0)]
    assert idle_moves(vehicles, now, SETUP, SETTINGS, ROUTER, set(), TwoHotspots(a, b, 10.0), None) == {}


def test_forecast_hotspots_spread_a_residential_zone_like_its_homes():
    import numpy as np

    from dispatch.demand import HOME_SPREAD_KM, HOME_ZONES, DemandModel, _scatter, _zone_points
    from dispatch.router import great_circle_km

    zone = HOME_ZONES[0]
    rng = np.random.default_rng(0)
    homes_km = np.mean([great_circle_km(zone.point, _scatter(rng, zone, HOME_SPREAD_KM)) for _ in range(4000)])
    points = _zone_points(zone, HOME_SPREAD_KM)
    assert len(points) == 7  # the centre and six ring points
    spread_km = sum(w * great_circle_km(zone.point, p) for p, w in points)
    assert spread_km == pytest.approx(homes_km, rel=0.05)
    hotspots = dict(DemandModel(200).hotspots(9 * 3600.0))
    assert sum(hotspots.values()) == pytest.approx(1.0)
    assert all(p in hotspots for p, _ in points)
