"""The nightly sweep: the same results on one worker and on a Dask cluster; a crashed run
resumes without redoing finished scenarios; the CLI writes a self-contained report."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulations.nightly import NightlyOptions, run_nightly
from tests.nightly_fixtures import write_small_portfolio

DATE = dt.date(2026, 4, 15)
OPTIONS = NightlyOptions(samples=2, flexibility="blocks", event_variants=False, replan_steps=12, inputs="profiles")


def stored_results(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "scenarios").glob("*.json"))}


def test_one_worker_and_a_two_worker_dask_cluster_give_identical_results(tmp_path):
    from dask.distributed import LocalCluster

    config = write_small_portfolio(tmp_path / "config")
    local = run_nightly(config, DATE, tmp_path / "one", workers=1, options=OPTIONS, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = run_nightly(
            config, DATE, tmp_path / "dask", scheduler=cluster.scheduler_address, options=OPTIONS, progress=False
        )
    assert local["sweep"]["workers"] == 1 and dask["sweep"]["workers"] == 2
    one, two = stored_results(tmp_path / "one"), stored_results(tmp_path / "dask")
    assert len(one) == local["sweep"]["scenarios"] > 20
    assert one == two
    assert {k: v for k, v in local.items() if k != "sweep"} == {k: v for k, v in dask.items() if k != "sweep"}
    # each sample has its own seed, and the seed changes the day
    samples = [r["result"] for r in one.values() if r["result"]["kind"] == "sample"]
    assert samples[0]["seed"] != samples[1]["seed"]
    assert samples[0]["kpis"]["energy_cost_yen"] != samples[1]["kpis"]["energy_cost_yen"]


def run_cli_until_some_results(config: Path, out: Path, args: list[str]) -> None:
    """Start ``ems simulate nightly`` and kill it (SIGKILL) once a few scenarios are stored."""
    env = os.environ | {"PYTHONPATH": str(Path.cwd())}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ems",
            "simulate",
            "nightly",
            "--config",
            str(config),
            "--date",
            DATE.isoformat(),
            "--out",
            str(out),
            *args,
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(list((out / "scenarios").glob("*.json"))) < 3:
            assert process.poll() is None, "the run ended before it could be interrupted"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_crashed_sweep_resumes_without_redoing_finished_scenarios(tmp_path):
    from ems.cli import main

    config = write_small_portfolio(tmp_path / "config")
    out = tmp_path / "night"
    args = ["--workers", "1", "--samples", "8", "--flexibility", "blocks", "--no-rolling", "--quiet"]
    run_cli_until_some_results(config, out, args)
    before = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "scenarios").glob("*.json")}
    assert len(before) >= 3
    assert not (out / "kpis.json").exists()

    assert (
        main(["simulate", "nightly", "--config", str(config), "--date", DATE.isoformat(), "--out", str(out), *args])
        == 0
    )
    figures = json.loads((out / "kpis.json").read_text())
    total = figures["sweep"]["scenarios"]
    assert total > len(before)
    assert figures["sweep"]["run_now"] == total - len(before)
    after = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "scenarios").glob("*.json")}
    assert len(after) == total
    assert all(after[name] == before[name] for name in before)  # untouched: not redone

    # the report and the figures, as an operator gets them
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 4
    assert "http://" not in report and "https://" not in report and "<script" not in report
    schedule = pd.read_csv(out / "plan" / "schedule.csv")
    grid = schedule[schedule["kind"] == "grid"].groupby("time")["power_kw"].sum()
    assert figures["plan"]["peak_import_kw"] == pytest.approx(grid.max(), abs=1e-3)
    for key in ("energy_cost_yen", "co2_kg", "local_pv_share", "peak_import_kw"):
        assert (
            key in figures["plan"] and figures["scenario_spread"][key]["p10"] <= figures["scenario_spread"][key]["p90"]
        )
    event = figures["events"][0]
    assert event["event_id"] == "evening-down"
    net = np.asarray(event["series_kw"]["net_import"])
    plan_baseline = np.asarray(event["series_kw"]["plan_without_event"])
    assert event["vs_plan_without_event"]["delivered_kwh"] == pytest.approx(
        (plan_baseline - net)[34:38].sum() * 0.5, abs=1e-2
    )
