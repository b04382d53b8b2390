"""Activating BCP mode for an outage that is over, or more than a week ahead, needs --force."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ems.bcp.mode import BcpModeStore
from ems.cli import main

SITES = "shelter_north,city_hall"


def _spec(start: dt.datetime, hours: float) -> str:
    return f"name=test; start={start.isoformat()}; hours={hours}; sites={SITES}"


def _activate(state, outage: str, *extra: str) -> int:
    return main(
        [
            "bcp",
            "activate",
            "--config",
            "config/arao.toml",
            "--outage",
            outage,
            "--operator",
            "Tanaka",
            "--state-dir",
            str(state),
            *extra,
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=9)))


@pytest.mark.parametrize(
    "start_offset,hours,why",
    [
        (dt.timedelta(days=-10), 24, "ended at"),  # over nine days ago
        (dt.timedelta(hours=-3), 2, "ended at"),  # ended an hour ago
        (dt.timedelta(days=8), 72, "days ahead"),
    ],
)
def test_a_past_or_distant_outage_is_refused_without_force(tmp_path, capsys, start_offset, hours, why):
    outage = _spec(_now() + start_offset, hours)
    assert _activate(tmp_path / "state", outage) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and why in err and "--force" in err and "outage spec" not in err
    assert BcpModeStore(tmp_path / "state").current() is None and BcpModeStore(tmp_path / "state").log() == []

    assert _activate(tmp_path / "state", outage, "--force") == 0
    assert why in capsys.readouterr().out
    mode = BcpModeStore(tmp_path / "state").current()
    assert mode.active and why in mode.forced
    log = [json.loads(line) for line in (tmp_path / "state" / "bcp_mode.log").read_text().splitlines()]
    assert why in log[0]["forced"]


@pytest.mark.parametrize(
    "start_offset,hours",
    [
        (dt.timedelta(hours=-1), 24),  # under way
        (dt.timedelta(days=6, hours=23), 72),  # within the week
    ],
)
def test_a_current_or_coming_outage_activates_without_force(tmp_path, start_offset, hours):
    assert _activate(tmp_path / "state", _spec(_now() + start_offset, hours)) == 0
    mode = BcpModeStore(tmp_path / "state").current()
    assert mode.active and mode.forced == ""
