"""Forecast quantiles and seeded forecast-error samples for PV and site loads.

The nightly run reads quantiles through one small interface, a :data:`QuantileSource`: given
the portfolio, its profiles and a time grid, it returns per PV array and load a
:class:`QuantileForecast` (P10, P50, P90 in kW on the grid). Two sources:
:func:`forecaster_quantiles` (the forecasters' bands, the default) and
:func:`profile_quantiles` (the config profiles as P50 with a fixed spread: exact and fast, for
tests and for portfolios without forecasts).

Samples (:func:`sample_series`): per asset a standard-normal path z[t] with AR(1) correlation
between steps (rho = 0.8 per 30 min, so errors persist for hours as real forecast errors do),
mapped through the quantiles: value = P50 + z (P90 - P50) / 1.2816 for z > 0 and
P50 + z (P50 - P10) / 1.2816 below, clipped at zero (and at the array's capacity for PV). The
generator is seeded from (seed, asset id), so a sample is the same on any worker.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ems.config.schema import Portfolio
from ems.optimise.inputs import slot_series
from ems.optimise.problem import TimeGrid

Z90 = 1.2816  # standard-normal quantile of 0.9
AR1_RHO_PER_30MIN = 0.8
PV_P10_FRACTION, PV_P90_FRACTION = 0.55, 1.2  # of P50: clouds cut deep, clear sky lifts a little
LOAD_P10_FRACTION, LOAD_P90_FRACTION = 0.9, 1.1


@dataclass(frozen=True)
class QuantileForecast:
    p10: np.ndarray
    p50: np.ndarray
    p90: np.ndarray
    cap_kw: float = np.inf  # physical upper limit (PV inverter or capacity)


QuantileSource = Callable[[Portfolio, Mapping[str, tuple[float, ...]], TimeGrid], dict[str, QuantileForecast]]


def profile_quantiles(
    portfolio: Portfolio, profiles: Mapping[str, tuple[float, ...]], grid: TimeGrid
) -> dict[str, QuantileForecast]:
    """P50 from the config profiles; P10/P90 a fixed fraction of it (documented above)."""
    zone = portfolio.portfolio.timezone
    out = {}
    for pv in portfolio.pv_arrays:
        cap = min(pv.capacity_kwp, pv.inverter_limit_kw or np.inf)
        p50 = np.minimum(slot_series(profiles[pv.profile], grid, zone) * pv.capacity_kwp, cap)
        out[pv.id] = QuantileForecast(p50 * PV_P10_FRACTION, p50, np.minimum(p50 * PV_P90_FRACTION, cap), cap)
    for load in portfolio.loads:
        p50 = slot_series(profiles[load.profile], grid, zone) * load.peak_kw
        out[load.id] = QuantileForecast(p50 * LOAD_P10_FRACTION, p50, p50 * LOAD_P90_FRACTION)
    return out


def forecaster_quantiles(
    portfolio: Portfolio, profiles: Mapping[str, tuple[float, ...]], grid: TimeGrid
) -> dict[str, QuantileForecast]:
    """The forecasters' P10/P50/P90 (``forecasting.portfolio_forecast``, no measured history)."""
    from forecasting import portfolio_forecast

    forecast = portfolio_forecast(
        portfolio, grid.start, steps=grid.steps, step_minutes=grid.step_minutes, profiles=profiles
    )
    caps = {pv.id: min(pv.capacity_kwp, pv.inverter_limit_kw or np.inf) for pv in portfolio.pv_arrays}
    return {
        asset: QuantileForecast(
            frame["p10_kw"].to_numpy(float),
            frame["p50_kw"].to_numpy(float),
            frame["p90_kw"].to_numpy(float),
            caps.get(asset, np.inf),
        )
        for asset, frame in forecast.frames.items()
    }


def correlated_normal(seed: int, asset_id: str, steps: int, step_minutes: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(asset_id.encode())])
    rho = AR1_RHO_PER_30MIN ** (step_minutes / 30)
    shocks = rng.standard_normal(steps)
    z = np.empty(steps)
    z[0] = shocks[0]
    for t in range(1, steps):
        z[t] = rho * z[t - 1] + np.sqrt(1 - rho**2) * shocks[t]
    return z


def sample_series(quantiles: Mapping[str, QuantileForecast], seed: int, step_minutes: int) -> dict[str, np.ndarray]:
    """One seeded sample per asset [kW], drawn through its quantiles."""
    out = {}
    for asset_id, q in sorted(quantiles.items()):
        z = correlated_normal(seed, asset_id, len(q.p50), step_minutes)
        upper = q.p50 + z * (q.p90 - q.p50) / Z90
        lower = q.p50 + z * (q.p50 - q.p10) / Z90
        out[asset_id] = np.clip(np.where(z > 0, upper, lower), 0.0, q.cap_kw)
    return out


def p50_series(quantiles: Mapping[str, QuantileForecast]) -> dict[str, np.ndarray]:
    return {asset_id: q.p50 for asset_id, q in quantiles.items()}
