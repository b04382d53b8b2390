"""BCP mode switching: explicit, logged, and kept across a restart."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from ems.bcp import load_outage
from ems.bcp.mode import BcpModeError, BcpModeStore
from ems.cli import main

TYPHOON = "config/outages/typhoon-72h.toml"


def test_activation_and_deactivation_are_logged_and_survive_a_restart(tmp_path, capsys):
    state = str(tmp_path / "state")
    # the typhoon file is a past outage: replaying it needs --force
    assert (
        main(
            [
                "bcp",
                "activate",
                "--config",
                "config/arao.toml",
                "--outage",
                TYPHOON,
                "--operator",
                "Tanaka",
                "--reason",
                "typhoon warning level 4",
                "--state-dir",
                state,
                "--force",
            ]
        )
        == 0
    )
    # a new process (a restarted controller) sees the mode as it was left
    status = subprocess.run(
        [sys.executable, "-m", "ems", "bcp", "status", "--state-dir", state], capture_output=True, text=True, check=True
    )
    assert "BCP mode: ACTIVE" in status.stdout and "Typhoon, 72 h" in status.stdout
    mode = BcpModeStore(state).current()
    assert mode.active and mode.operator == "Tanaka" and mode.outage == load_outage(TYPHOON)

    assert (
        main(
            [
                "bcp",
                "activate",
                "--config",
                "config/arao.toml",
                "--outage",
                TYPHOON,
                "--operator",
                "Sato",
                "--state-dir",
                state,
            ]
        )
        == 1
    )
    assert "already active" in capsys.readouterr().err

    assert main(["bcp", "deactivate", "--operator", "Sato", "--reason", "grid restored", "--state-dir", state]) == 0
    assert not BcpModeStore(state).is_active()
    log = [json.loads(line) for line in (tmp_path / "state" / "bcp_mode.log").read_text().splitlines()]
    assert [(e["action"], e["operator"], e["reason"]) for e in log] == [
        ("activate", "Tanaka", "typhoon warning level 4"),
        ("deactivate", "Sato", "grid restored"),
    ]
    assert dt.datetime.fromisoformat(log[0]["since"]) <= dt.datetime.fromisoformat(log[1]["since"])
    assert log[0]["outage"]["sites"] == ["shelter_north", "shelter_central", "shelter_south", "city_hall"]

    assert main(["bcp", "deactivate", "--operator", "Sato", "--state-dir", state]) == 1
    assert len(BcpModeStore(state).log()) == 2


def test_a_bad_outage_activates_nothing(tmp_path):
    state = tmp_path / "state"
    assert (
        main(
            [
                "bcp",
                "activate",
                "--config",
                "config/arao.toml",
                "--outage",
                "start=2026-09-15T14:00+09:00; hours=72; sites=nowhere",
                "--operator",
                "Tanaka",
                "--state-dir",
                str(state),
            ]
        )
        == 2
    )
    assert BcpModeStore(state).current() is None and BcpModeStore(state).log() == []


def test_naive_times_and_corrupt_records_are_refused(tmp_path):
    store = BcpModeStore(tmp_path)
    with pytest.raises(BcpModeError, match="timezone-aware"):
        store.activate(load_outage(TYPHOON), "config/arao.toml", "Tanaka", dt.datetime(2026, 9, 15, 13, 0))
    assert store.log() == []
    (tmp_path / "bcp_mode.json").write_text("{not json")
    with pytest.raises(BcpModeError, match="bcp_mode.json: unreadable"):
        store.current()
