"""``ems plan`` end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from ems.cli import main


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan")
    assert main(["plan", "--config", "config/arao.toml", "--date", "2026-04-15", "--out", str(out)]) == 0
    return out


def test_schedule_csv_is_long_form_with_the_sign_convention(plan_dir):
    frame = pd.read_csv(plan_dir / "schedule.csv")
    assert list(frame.columns) == ["time", "site", "asset", "kind", "power_kw", "soc_kwh"]
    assert set(frame["kind"]) == {"grid", "pv", "load", "battery", "ev"}
    assert frame["time"].str.endswith("+09:00").all()
    assert frame.loc[frame["kind"] == "pv", "power_kw"].min() >= 0
    assert frame.loc[frame["kind"] == "load", "power_kw"].max() <= 0
    assert frame.loc[frame["kind"].isin(["grid", "pv", "load"]), "soc_kwh"].isna().all()
    assert frame.loc[frame["kind"].isin(["battery", "ev"]), "soc_kwh"].notna().all()
    at_sites = frame[frame["site"].notna()]
    assert at_sites.groupby(["time", "site"])["power_kw"].sum().abs().max() < 1e-2
    assert frame["time"].nunique() == 96


def test_summary_has_the_contract_keys(plan_dir):
    summary = json.loads((plan_dir / "summary.json").read_text())
    for key in (
        "objective_yen",
        "cost_yen",
        "co2_kg",
        "solver_status",
        "mip_gap",
        "solve_s",
        "build_s",
        "baseline_cost_yen",
    ):
        assert key in summary, key
    assert summary["solver_status"] == "optimal"
    assert summary["baseline_cost_yen"] > summary["cost_yen"] > 0


def test_plot_is_a_png(plan_dir):
    assert (plan_dir / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_console_script_prints_the_table(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ems",
            "plan",
            "--config",
            "config/arao.toml",
            "--date",
            "2026-04-16",
            "--out",
            str(tmp_path),
            "--no-plot",
            "--horizon-hours",
            "24",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "city_hall" in result.stdout and "baseline" in result.stdout
    assert not (tmp_path / "plan.png").exists()


def test_bad_config_stops_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(open("config/arao.toml").read().replace("capacity_kwh = 120.0", "capacity_kwh = -120.0"))
    out = tmp_path / "never"
    result = subprocess.run(
        [sys.executable, "-m", "ems", "plan", "--config", str(bad), "--date", "2026-04-15", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "batteries[id=city_hall_bess].capacity_kwh" in result.stderr
    assert str(bad) in result.stderr
    assert not out.exists()


def test_plan_uses_the_forecasters_by_default(plan_dir):
    from ems.planning import plan_inputs

    assert json.loads((plan_dir / "summary.json").read_text())["inputs"] == "forecast"
    pv_kwh = {}
    for day in ("2026-06-21", "2026-12-21"):
        problem = plan_inputs(
            "config/arao.toml", pd.Timestamp(day, tz="Asia/Tokyo"), horizon_hours=24, inputs="forecast"
        ).problem
        pv = sum(p.available_kw for p in problem.pvs)
        hours = problem.grid.index.hour
        assert pv[(hours < 4) | (hours >= 21)].max() == 0.0  # dark at night
        pv_kwh[day] = pv.sum() * problem.grid.step_h
    # fixed profiles would give the same energy every day; the sun does not
    assert pv_kwh["2026-06-21"] > 1.2 * pv_kwh["2026-12-21"]
