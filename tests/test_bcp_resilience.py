"""Resilience statistics from survival runs, and the [bcp] settings of a portfolio file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

from ems.bcp.resilience import survival_statistics
from ems.config import ConfigError, parse_portfolio


def test_statistics_from_hours_up():
    runs = pd.DataFrame(
        [
            {"start": f"s{i}", "with_fleet": fleet, "shelter": "a", "hours_up": hours}
            for i, (fleet, hours) in enumerate(
                [
                    (True, 168.0),
                    (True, 50.0),
                    (True, 20.0),
                    (True, 100.0),
                    (False, 10.0),
                    (False, 30.0),
                    (False, 5.0),
                    (False, 0.0),
                ]
            )
        ]
    )
    stats = survival_statistics(runs, [24, 72]).set_index(["with_fleet", "duration_hours"])
    assert stats.loc[(True, 24)][["hours_min", "hours_mean", "hours_max", "probability"]].tolist() == [
        20.0,
        23.0,
        24.0,
        0.75,
    ]
    assert stats.loc[(True, 72)][["hours_min", "hours_mean", "hours_max", "probability"]].tolist() == [
        20.0,
        53.5,
        72.0,
        0.5,
    ]
    assert stats.loc[(False, 24)][["hours_min", "hours_mean", "hours_max", "probability"]].tolist() == [
        0.0,
        9.75,
        24.0,
        0.25,
    ]
    assert stats.loc[(False, 72), "probability"] == 0.0


def test_bcp_settings_are_validated_with_their_key():
    raw = tomllib.loads(open("config/arao.toml").read())
    raw["bcp"] = {"step_minutes": 45, "rotation_hours": 6}
    with pytest.raises(ConfigError, match=r"bcp\.step_minutes: Value error, must be 30 or 60"):
        parse_portfolio(raw, "arao.toml")
    raw["bcp"] = {"rotation_hours": 6, "detour": 1.2}
    with pytest.raises(ConfigError, match=r"bcp\.detour: Extra inputs are not permitted"):
        parse_portfolio(raw, "arao.toml")
    raw["bcp"] = {"rotation_hours": 6}
    assert parse_portfolio(raw, "arao.toml").bcp.rotation_hours == 6


def test_resilience_command_reports_the_fleet_value(tmp_path):
    from ems.cli import main

    # a longer time limit than the default 5 s: on a loaded machine the search may stop before it
    # finds the rotation that carries every shelter; on a quiet one it ends at optimal long before
    config = tmp_path / "arao.toml"
    config.write_text(Path("config/arao.toml").read_text() + "\n[bcp]\ntime_limit_s = 60.0\n")
    assert (
        main(
            [
                "bcp",
                "resilience",
                "--config",
                str(config),
                "--outage",
                "config/outages/typhoon-72h.toml",
                "--durations",
                "6",
                "12",
                "--starts",
                "2",
                "--every-hours",
                "12",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    stats = pd.read_csv(tmp_path / "resilience.csv")
    assert len(stats) == 2 * 3 * 2  # fleet or not x shelters x durations
    both = stats.pivot_table(index=["shelter", "duration_hours"], columns="with_fleet", values="probability")
    assert (both[True] >= both[False]).all()
    assert both[True].min() == 1.0  # the depot keeps the grid: the fleet carries every shelter through 12 h
    assert (tmp_path / "resilience.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs["start"].nunique() == 2 and runs["hours_up"].max() <= 12


def test_outage_spec_round_trips_any_valid_outage():
    import datetime as dt

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from ems.bcp import load_outage

    sites = ["city_hall", "cultural_centre", "taxi_depot", "shelter_north", "shelter_central", "shelter_south"]

    @settings(max_examples=60, deadline=None)
    @given(
        chosen=st.lists(st.sampled_from(sites), min_size=1, max_size=6, unique=True),
        hours=st.floats(min_value=0.5, max_value=336, allow_nan=False).map(lambda h: round(h, 2)),
        pv_scale=st.floats(min_value=0, max_value=1, allow_nan=False).map(lambda x: round(x, 3)),
        minutes=st.integers(min_value=0, max_value=60 * 24 * 365),
    )
    def check(chosen, hours, pv_scale, minutes):
        start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=9))) + dt.timedelta(minutes=minutes)
        spec = f"start={start.isoformat()}; hours={hours}; sites={','.join(chosen)}; pv_scale={pv_scale}"
        outage = load_outage(spec)
        assert (outage.start, outage.duration_hours, outage.sites, outage.pv_scale) == (
            start,
            hours,
            tuple(chosen),
            pv_scale,
        )

    check()
