"""The assignment policy is a setting: the replay (and a live service) read ``[dispatch] policy``."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatch.clock import ServiceClock
from dispatch.fleet import ChargerSpec, FleetSetup, VehicleSpec
from dispatch.router import StraightLineRouter
from dispatch.simulate import Simulation, kpis
from ems.config.dispatch import DispatchSettings
from tests.dispatch_fixtures import CENTRE, DEPOT, north, request

HOURS = ((8 * 3600.0, 18 * 3600.0),)


@pytest.mark.parametrize("policy, shared", [("ilp", True), ("no-pooling", False)])
def test_the_configured_policy_is_the_one_the_replay_runs(policy, shared):
    settings = DispatchSettings(policy=policy, service_end=dt.time(9, 0), rebalance=False)
    setup = FleetSetup(
        (VehicleSpec("v1", 4, 40.0, 0.15, 4.0, 38.0, 5.0, 30.0, "c1", HOURS),),
        (ChargerSpec("c1", DEPOT, 6.0),),
        DEPOT,
        ServiceClock(dt.date(2026, 4, 15)),
    )
    start = 8 * 3600.0 + 300.0
    riders = (
        request("a", north(CENTRE, 1.0), north(CENTRE, 5.0), start),
        request("b", north(CENTRE, 1.2), north(CENTRE, 5.2), start),
    )
    result = Simulation(setup, riders, StraightLineRouter(30.0, 1.3), settings).run()
    assert result.policy == policy
    figures = kpis(result)
    # one taxi: together both riders are carried; one at a time the second cannot be reached in time
    assert figures["served"] == (2 if shared else 1)
    assert figures["shared_ride_share"] == (1.0 if shared else 0.0)


def test_an_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="policy"):
        DispatchSettings(policy="greedy")


def test_an_unknown_rebalancing_method_in_a_portfolio_is_rejected_naming_the_key():
    import tomllib
    from pathlib import Path

    from ems.config import ConfigError
    from ems.config.load import parse_portfolio

    config = Path(__file__).resolve().parent.parent / "config" / "arao.toml"
    raw = tomllib.loads(config.read_text())
    raw.setdefault("dispatch", {})["rebalance_method"] = "teleport"
    with pytest.raises(ConfigError, match=r"dispatch\.rebalance_method"):
        parse_portfolio(raw, config)
    raw["dispatch"]["rebalance_method"] = "stations"
    assert parse_portfolio(raw, config).dispatch.rebalance_method == "stations"
