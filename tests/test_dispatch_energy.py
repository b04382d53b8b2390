"""Energy rules of the fleet: charge-now tied to the floor, rebalancing and charger drives that
keep the floor, thresholds that contradict each other rejected, small batteries never below floor."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from dispatch.assign import Policy
from dispatch.clock import ServiceClock
from dispatch.fleet import ChargerSpec, FleetSetup, IdleVehicle, VehicleSpec, choose_charger, idle_moves
from dispatch.model import Point, StopKind
from dispatch.router import StraightLineRouter
from dispatch.simulate import Simulation, kpis
from ems.config import ConfigError
from ems.config.dispatch import DispatchSettings, charge_now_kwh
from ems.config.load import parse_portfolio
from tests.dispatch_fixtures import CENTRE, DEPOT, east, north, request

SETTINGS = DispatchSettings()
ROUTER = StraightLineRouter(SETTINGS.speed_kmh, SETTINGS.detour_factor)
CLOCK = ServiceClock(dt.date(2026, 4, 15))
HOURS = ((8 * 3600.0, 18 * 3600.0),)
NOW = 10 * 3600.0


def spec(vehicle_id="v1", battery_kwh=40.0, initial_kwh=20.0, home="home") -> VehicleSpec:
    # floor: 10 % of the battery plus a 5 kWh reserve
    return VehicleSpec(
        vehicle_id, 4, battery_kwh, 0.15, 0.1 * battery_kwh, 0.95 * battery_kwh, 5.0, initial_kwh, home, HOURS
    )


class Demand:
    """One hotspot; ``rate`` requests/h against a daily mean of ``mean``."""

    def __init__(self, hotspot: Point, rate: float = 10.0, mean: float = 10.0):
        self.hotspot, self.rate, self.mean = hotspot, rate, mean

    def rate_per_h(self, time_s):
        return self.rate

    def mean_rate_per_h(self):
        return self.mean

    def hotspots(self, time_s):
        return [(self.hotspot, 1.0)]


CHARGERS = (ChargerSpec("home", CENTRE, 6.0),)
SETUP = FleetSetup((spec(),), CHARGERS, DEPOT, CLOCK)


def idle(soc_kwh: float) -> IdleVehicle:
    return IdleVehicle(spec(), CENTRE, soc_kwh, NOW - 3600.0, None, None)


def test_charge_now_level_is_never_below_the_floor_plus_an_hour_of_driving():
    # 40 kWh: floor 9 kWh, an hour of expected driving 12 km x 0.15 = 1.8 kWh; low_soc_fraction gives 10
    assert charge_now_kwh(SETTINGS, 40.0, 9.0, 0.15) == pytest.approx(10.8)
    peak = Demand(north(CENTRE, 1.0), rate=20.0)  # at the peak only an urgent charge is made
    moves = idle_moves([idle(10.5)], NOW, SETUP, SETTINGS, ROUTER, set(), peak, None)
    assert moves["v1"].kind is StopKind.CHARGER  # above low_soc_fraction x battery, below the floor plus an hour
    assert idle_moves([idle(11.0)], NOW, SETUP, SETTINGS, ROUTER, set(), peak, None)["v1"].kind is StopKind.REBALANCE


def test_rebalancing_never_moves_a_vehicle_it_cannot_bring_back_above_its_floor():
    far = north(CENTRE, 10.0)  # 13 road km: 1.95 kWh there and 1.95 kWh back to the charger
    demand = Demand(far, rate=20.0)  # the peak: no charging for the hours ahead
    moves = idle_moves([idle(12.5)], NOW, SETUP, SETTINGS, ROUTER, set(), demand, None)
    assert moves == {}  # 12.5 - 3.9 = 8.6 kWh would be below the 9 kWh floor
    moves = idle_moves([idle(13.5)], NOW, SETUP, SETTINGS, ROUTER, set(), demand, None)
    assert moves["v1"].kind is StopKind.REBALANCE and moves["v1"].point == far  # 9.6 kWh left: it goes


def test_charger_drive_prefers_a_charger_reached_with_the_floor_kept():
    far_free = ChargerSpec("far", north(CENTRE, 10.0), 50.0)
    near = ChargerSpec("near", east(CENTRE, 1.0), 6.0)
    vehicle = spec()
    # both free: the nearer is reached sooner anyway
    assert choose_charger(CENTRE, vehicle, [far_free, near], ROUTER, 10.0, 9.0).charger_id == "near"
    # the far one is reached sooner from the north but not with the floor kept
    start = north(CENTRE, 8.5)
    assert choose_charger(start, vehicle, [far_free, near], ROUTER, 20.0, 9.0).charger_id == "far"
    assert choose_charger(start, vehicle, [far_free, near], ROUTER, 10.3, 9.0).charger_id == "far"
    assert (
        choose_charger(
            north(CENTRE, 3.0), vehicle, [ChargerSpec("x", north(CENTRE, 9.0), 50.0), near], ROUTER, 9.5, 9.0
        ).charger_id
        == "near"
    )


def _raw() -> dict:
    return tomllib.loads(Path("config/arao.toml").read_text())


def test_charge_now_below_a_vehicles_floor_is_rejected_naming_the_keys():
    raw = _raw()
    raw["vehicles"][2]["battery_kwh"] = 30.0  # floor 3 + 5 = 8 kWh, low_soc_fraction 0.25 x 30 = 7.5 kWh
    with pytest.raises(ConfigError) as error:
        parse_portfolio(raw, "arao.toml")
    text = str(error.value)
    assert "dispatch.low_soc_fraction" in text and f"vehicles[id={raw['vehicles'][2]['id']}]" in text
    assert "8.00 kWh" in text and "0.267" in text
    raw["dispatch"] = {"low_soc_fraction": 0.3}
    parse_portfolio(raw, "arao.toml")  # raised above the floor: accepted


def test_release_at_or_below_the_charge_now_level_is_rejected():
    raw = _raw()
    raw["dispatch"] = {"charge_release_fraction": 0.27}  # 40 kWh: 10.8 kWh, not above 10.8 kWh
    with pytest.raises(ConfigError, match=r"dispatch\.charge_release_fraction.*not above its charge-now level"):
        parse_portfolio(raw, "arao.toml")


@pytest.mark.parametrize("method", ["coverage", "transport", "stations"])
def test_small_batteries_never_drop_below_their_floor_and_never_idle_nearly_empty(method):
    # three 12 kWh taxis (floor 6.2 kWh, charge now below 8 kWh) start at 8.5 kWh; demand is
    # forecast 8 km away, where rebalancing without the energy check would strand them
    specs = tuple(spec(f"v{i}", 12.0, 8.5, home=f"c{i}") for i in range(3))
    chargers = tuple(ChargerSpec(f"c{i}", DEPOT, 3.0) for i in range(3))
    setup = FleetSetup(specs, chargers, DEPOT, CLOCK)
    hotspot = north(DEPOT, 8.0)
    settings = DispatchSettings(
        service_end=dt.time(9, 30), idle_rebalance_s=60.0, batch_interval_s=60.0, rebalance_method=method
    )
    requests = tuple(
        request(f"r{i}", north(DEPOT, 1.0 + i % 4), east(DEPOT, 2.0 + i % 3), time_s=8 * 3600.0 + 600.0 * i)
        for i in range(8)
    )
    result = Simulation(setup, requests, ROUTER, settings, Policy.INSERTION, Demand(hotspot, 20.0, 20.0)).run()
    figures = kpis(result)
    assert figures["vehicles_below_floor"] == 0
    assert figures["min_soc_above_floor_kwh"] >= 0.0
    assert figures["idle_low_vehicle_h"] == 0.0
    assert figures["served"] >= 4
    assert figures["km_rebalancing"] > 0 or figures["km_to_charger"] > 0  # the rules were exercised
