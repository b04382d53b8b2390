"""Vehicles without a home charger (``home_charger`` unset: the dispatcher picks their chargers)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dispatch.clock import ServiceClock
from dispatch.fleet import ChargerSpec, FleetSetup, VehicleSpec, fleet_from_portfolio, vehicle_plan
from ems.config import load_portfolio
from ems.config.dispatch import DispatchSettings
from tests.dispatch_fixtures import CENTRE, DEPOT, east

REPO = Path(__file__).resolve().parent.parent
SETTINGS = DispatchSettings()
CLOCK = ServiceClock(dt.date(2026, 4, 15))
CHARGERS = (ChargerSpec("near", east(CENTRE, 0.5), 6.0),)
HOURS = ((8 * 3600.0, 18 * 3600.0),)


def test_plan_of_a_vehicle_without_home_charger_has_no_night_window():
    spec = VehicleSpec("v1", 4, 40.0, 0.15, 4.0, 38.0, 5.0, 20.0, None, HOURS)
    setup = FleetSetup((spec,), CHARGERS, DEPOT, CLOCK)
    now = 12 * 3600.0
    plan = vehicle_plan(spec, now, 16.0, now, "near", setup, SETTINGS, None)
    # the window of the charger it stands at now, and none after its hours: it has no charger of its own
    assert [w.charger_id for w in plan.windows] == ["near"]
    assert plan.windows[0].plug_out <= CLOCK.to_datetime(18 * 3600.0)


def test_fleet_without_depot_site_needs_the_first_vehicle_home_charger():
    portfolio = load_portfolio(REPO / "config" / "arao.toml")
    vehicles = [portfolio.vehicles[0].model_copy(update={"home_charger": None}), *portfolio.vehicles[1:]]
    no_depot = portfolio.portfolio.model_copy(update={"depot_site": None})
    homeless = portfolio.model_copy(update={"portfolio": no_depot, "vehicles": vehicles})
    with pytest.raises(ValueError, match=r"portfolio\.depot_site: needed when vehicles\[0\] has no home_charger"):
        fleet_from_portfolio(homeless, CLOCK.date)
    # with its home charger the depot is that charger's site
    setup = fleet_from_portfolio(portfolio.model_copy(update={"portfolio": no_depot}), CLOCK.date)
    home = next(c for c in portfolio.chargers if c.id == portfolio.vehicles[0].home_charger)
    site = next(s for s in portfolio.sites if s.id == home.site)
    assert (setup.depot.lat, setup.depot.lon) == (site.latitude_deg, site.longitude_deg)
