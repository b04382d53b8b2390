"""Rolling-origin backtests and their scores.

Data are labelled by interval start. From each issue time ``t`` (every ``origin_every`` hours on
the local clock, every hour by default, after a warm-up) the model, persistence and seasonal naive
each forecast the ``horizon`` from ``t`` on, seeing only intervals that have ended by ``t``: the
interval labelled ``t`` is the first one forecast (lead 1 step), never part of the history.
Persistence holds the last value up to a 12 h lead and takes the value at the same time of day
on the last measured day beyond (a value held from a midnight origin would be zero PV all day).
Scores by lead-time bucket (:data:`forecasting.quantiles.LEAD_BUCKETS_H`), a lead counting to
the end of its interval:

* ``mae``, ``rmse`` in kW; ``nmae`` = MAE / mean actual over all scored rows of the dataset;
* ``skill_vs_<reference>`` = 1 - RMSE(model) / RMSE(reference) (positive: the model is better).

The P10/P90 band (per lead bucket and hour of day, :mod:`forecasting.quantiles`) is measured
out of sample by two-fold cross-validation: quantiles fitted on the origins of even weeks are
scored on the odd weeks and the other way round (so both parts span the whole period); the
reported coverage, overall and per hour of day, is the mean of the two. The band kept for use
is then fitted on all origins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.baselines import reference_forecasts
from forecasting.quantiles import LEAD_BUCKETS_H, ResidualQuantiles, coverage, fit_residual_quantiles, lead_bucket_h

Forecaster = Callable[[pd.Series, pd.DatetimeIndex], pd.Series]
MODELS = ("model", "persistence", "seasonal_naive")
DAY_AHEAD_MIN_LEAD_H = 12  # buckets above this (24, 36, 48 h) count as day-ahead


@dataclass(frozen=True)
class BacktestSpec:
    horizon: pd.Timedelta
    warmup: pd.Timedelta
    season: pd.Timedelta
    origin_every: pd.Timedelta = pd.Timedelta(hours=1)  # noqa: RUF009 - Timedelta is immutable


@dataclass
class BacktestResult:
    dataset: str
    rows: pd.DataFrame  # origin, time, lead_h, actual, model, persistence, seasonal_naive, scale, fold, p10, p90
    quantiles: ResidualQuantiles
    coverage_held_out: float  # mean of the two folds, daylight rows only for PV
    coverage_by_hour: dict[int, float]  # the same per local hour of day of the forecast interval

    def table(self) -> pd.DataFrame:
        return score_table(self.rows, self.dataset)


def origins(index: pd.DatetimeIndex, spec: BacktestSpec) -> list[int]:
    """Positions of forecast origins: on local hours that are multiples of ``origin_every``."""
    every_h = int(spec.origin_every.total_seconds() // 3600)
    step = index[1] - index[0]
    horizon_steps = int(spec.horizon / step)
    first = index[0] + spec.warmup
    hours, minutes = index.hour.to_numpy(), index.minute.to_numpy()
    aligned = (minutes == 0) & (hours % every_h == 0)
    positions = np.flatnonzero(aligned & np.asarray(index >= first))
    return [int(p) for p in positions if p + horizon_steps <= len(index)]


def run_backtest(
    dataset: str,
    actual: pd.Series,
    forecaster: Forecaster,
    spec: BacktestSpec,
    scale: Callable[[pd.Series, pd.DatetimeIndex], np.ndarray] | None = None,
) -> BacktestResult:
    """Roll ``forecaster`` over ``actual``. ``scale(p50, index)`` sets the residual scale (default: P50)."""
    step = actual.index[1] - actual.index[0]
    horizon_steps = int(spec.horizon / step)
    values = actual.to_numpy(dtype=float)
    filled = actual.ffill().to_numpy(dtype=float)
    positions, frames = origins(actual.index, spec), []
    for position in positions:
        history = actual.iloc[:position]  # intervals that have ended by the issue time
        target = actual.index[position : position + horizon_steps]
        model = forecaster(history, target).to_numpy(dtype=float)
        held, naive = reference_forecasts(values, filled, position, horizon_steps, step, spec.season)
        frames.append(
            (model, held, naive, model if scale is None else np.asarray(scale(pd.Series(model, index=target), target)))
        )
    if not frames:
        warmup_h, horizon_h = spec.warmup / pd.Timedelta(hours=1), spec.horizon / pd.Timedelta(hours=1)
        raise ValueError(
            f"{dataset}: too short for a backtest (needs {warmup_h:g} h of warm-up plus the {horizon_h:g} h horizon)"
        )
    steps = np.concatenate([np.arange(p, p + horizon_steps) for p in positions])
    issued = actual.index[np.repeat(positions, horizon_steps)]
    target = actual.index[steps]
    rows = pd.DataFrame(
        {
            "origin": issued,
            "time": target,
            "lead_h": (target + step - issued).total_seconds().to_numpy() / 3600.0,
            "actual": values[steps],
            **{
                name: np.concatenate([f[k] for f in frames])
                for k, name in enumerate(("model", "persistence", "seasonal_naive", "scale"))
            },
        }
    )
    week = ((rows["origin"] - rows["origin"].iloc[0]) // pd.Timedelta(days=7)).to_numpy()
    rows["fold"] = week % 2
    daylight = (rows["scale"] > 1e-6 * rows["scale"].abs().max()).to_numpy()
    hours = rows["time"].dt.hour.to_numpy()
    held_out, held_out_by_hour = [], []
    for fold in (0, 1):  # fit on one set of alternate weeks, measure on the other, then swap
        fit_rows = rows[rows["fold"] == fold]
        fitted = fit_residual_quantiles(
            fit_rows["actual"], fit_rows["model"], fit_rows["scale"], fit_rows["lead_h"], fit_rows["time"].dt.hour
        )
        p10, p90 = fitted.band(rows["model"], rows["scale"], rows["lead_h"].to_numpy(), hours)
        held = (rows["fold"] != fold).to_numpy() & daylight
        held_out.append(coverage(rows["actual"], p10, p90, held))
        held_out_by_hour.append({h: coverage(rows["actual"], p10, p90, held & (hours == h)) for h in range(24)})
    quantiles = fit_residual_quantiles(rows["actual"], rows["model"], rows["scale"], rows["lead_h"], hours)
    p10, p90 = quantiles.band(rows["model"], rows["scale"], rows["lead_h"].to_numpy(), hours)
    rows["p10"], rows["p90"] = p10.to_numpy(), p90.to_numpy()
    by_hour = {
        h: float(np.nanmean([part[h] for part in held_out_by_hour]))
        for h in range(24)
        if any(np.isfinite(part[h]) for part in held_out_by_hour)
    }
    cover = float(np.mean(held_out))
    return BacktestResult(dataset, rows, quantiles, cover, by_hour)


def score_table(rows: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """One row per (model, lead bucket): dataset, model, lead_h, mae, rmse, nmae, skills."""
    scored = rows.dropna(subset=["actual", *MODELS])
    buckets = lead_bucket_h(scored["lead_h"])
    mean_actual = float(scored["actual"].abs().mean())
    records = []
    for edge in LEAD_BUCKETS_H:
        chosen = scored[buckets == edge]
        if chosen.empty:
            continue
        errors = {m: chosen[m].to_numpy() - chosen["actual"].to_numpy() for m in MODELS}
        rmse = {m: float(np.sqrt(np.mean(e**2))) for m, e in errors.items()}
        for m in MODELS:
            mae = float(np.mean(np.abs(errors[m])))
            records.append(
                {
                    "dataset": dataset,
                    "model": m,
                    "lead_h": edge,
                    "mae": mae,
                    "rmse": rmse[m],
                    "nmae": mae / mean_actual if mean_actual > 0 else float("nan"),
                    "skill_vs_persistence": _skill(rmse[m], rmse["persistence"]),
                    "skill_vs_seasonal_naive": _skill(rmse[m], rmse["seasonal_naive"]),
                }
            )
    return pd.DataFrame.from_records(records)


def hour_table(rows: pd.DataFrame, coverage_by_hour: dict[int, float]) -> pd.DataFrame:
    """MAE [kW] of each model and the band's held-out coverage by local hour of day (all leads)."""
    scored = rows.dropna(subset=["actual", *MODELS])
    hours = scored["time"].dt.hour
    table = pd.DataFrame({m: (scored[m] - scored["actual"]).abs().groupby(hours).mean() for m in MODELS})
    table["mean_actual"] = scored["actual"].groupby(hours).mean()
    table["coverage"] = pd.Series(coverage_by_hour, dtype=float)
    table.index.name = "hour"
    return table


def _skill(rmse: float, reference_rmse: float) -> float:
    return 1.0 - rmse / reference_rmse if reference_rmse > 0 else float("nan")


def day_ahead_skills(table: pd.DataFrame) -> pd.DataFrame:
    """The model's skills at day-ahead leads (buckets above 12 h)."""
    model = table[(table["model"] == "model") & (table["lead_h"] > DAY_AHEAD_MIN_LEAD_H)]
    return model[["dataset", "lead_h", "skill_vs_persistence", "skill_vs_seasonal_naive"]].reset_index(drop=True)
