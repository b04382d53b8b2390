"""The operator's BCP switch reaches the running controller: reservations and held energy."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ems.bcp import load_outage
from ems.bcp.mode import BcpModeStore
from ems.cli.run import BcpSwitch
from ems.config import load_portfolio
from ems.control.controller import Controller
from ems.store import Store

NOW = dt.datetime(2026, 9, 15, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def test_activation_switches_the_controller_and_deactivation_returns_it(tmp_path):
    portfolio = load_portfolio("config/arao.toml")
    outage = load_outage("config/outages/typhoon-72h.toml")
    store = Store(tmp_path / "ems.sqlite")
    switch = BcpSwitch(portfolio, "config/arao.toml", tmp_path / "state")
    controller = Controller(portfolio, "config/arao.toml", None, store, lambda: NOW, inputs="profiles", horizon_hours=12, bcp=switch)
    start = pd.Timestamp(NOW)

    assert controller.check_bcp_mode() is False
    normal = controller._problem(start)
    assert controller.reservation.shelter_calls == ()

    BcpModeStore(tmp_path / "state").activate(outage, "config/arao.toml", "duty officer", NOW, "typhoon warning")
    assert controller.check_bcp_mode() is True
    calls = controller.reservation.shelter_calls
    assert calls and {c.shelter_id for c in calls} <= {s.id for s in portfolio.shelters}
    assert set(controller.reservation.keep_energy_kwh) == {c.vehicle_id for c in calls}
    held = controller._problem(start)
    reserve = {b.id: b.reserve_kwh for b in held.batteries}
    before = {b.id: b.reserve_kwh for b in normal.batteries}
    assert reserve["city_hall_bess"] > before["city_hall_bess"]  # city hall is in the outage: charge up and hold
    assert reserve["cultural_centre_bess"] == before["cultural_centre_bess"]  # keeps the grid: unchanged
    keep = {e.id: e.keep_energy_kwh for e in held.evs}
    assert all(keep[v] == controller.reservation.keep_energy_kwh[v] for v in controller.reservation.keep_energy_kwh)

    BcpModeStore(tmp_path / "state").deactivate("duty officer", NOW + dt.timedelta(hours=1), "all clear")
    assert controller.check_bcp_mode() is False
    assert controller.reservation.shelter_calls == ()
    assert {b.id: b.reserve_kwh for b in controller._problem(start).batteries} == before
    events = [row[2] for row in list(store.rows("events"))[1:] if row[1] == "bcp-mode"]
    assert len(events) == 2 and "BCP mode on (operator duty officer" in events[0] and "normal operation" in events[1]


def test_an_active_record_without_an_outage_is_recorded_and_the_mode_stays(tmp_path):
    """A hand-edited mode record that is active but names no outage: recorded, nothing switched."""
    from ems.bcp.mode import BcpMode

    class HandEdited:
        def current(self):
            return BcpMode(active=True, since=NOW, operator="someone", outage=None)

        def reservation(self, outage, soc_kwh, now):
            raise AssertionError("no BCP plan without an outage")

    portfolio = load_portfolio("config/arao.toml")
    store = Store(tmp_path / "ems.sqlite")
    controller = Controller(portfolio, "config/arao.toml", None, store, lambda: NOW, inputs="profiles", horizon_hours=12, bcp=HandEdited())
    controller._follow_bcp_mode(NOW)
    assert controller.bcp_since is None and controller.bcp_sites == frozenset()
    events = [(row[1], row[2]) for row in list(store.rows("events"))[1:]]
    assert events == [("bcp-mode-unreadable", f"BCP mode switch unreadable (ValueError: the BCP mode record since {NOW.isoformat()} "
                                               "names no outage); BCP mode stays off")]
