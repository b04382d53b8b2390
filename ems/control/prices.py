"""Prices by date for a plan: the stored JEPX prices of each date it covers, and a price
forecast (``forecasting.prices``) for the dates not yet published, plus the retailer's terms."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd

from ems.config.schema import Portfolio
from ems.market.tariff import DayPrices, retail_prices
from ems.store import Store, StoreError
from ems.store.prices import prices_between
from forecasting.prices import PriceHistoryError, PriceSite, forecast_prices

log = logging.getLogger(__name__)


def plan_dates(start: pd.Timestamp, hours: float, timezone: str) -> list[dt.date]:
    """Local dates a plan of ``hours`` from ``start`` touches."""
    first = start.tz_convert(timezone)
    last = first + pd.Timedelta(hours=hours) - pd.Timedelta(minutes=1)
    return [d.date() for d in pd.date_range(first.normalize(), last.normalize(), freq="D")]


def price_site(portfolio: Portfolio) -> PriceSite:
    info = portfolio.portfolio
    return PriceSite(
        info.latitude_deg,
        info.longitude_deg,
        info.timezone,
        portfolio.forecasting.default_clear_sky_index,
        portfolio.forecasting.holiday_country,
    )


def market_day_prices(portfolio: Portfolio, start: pd.Timestamp, hours: float, store: Store | None = None) -> DayPrices:
    """Import and export prices for every date of the plan. Raises :class:`PriceHistoryError`
    when a date lacks prices and the store holds too little history to forecast them."""
    settings = portfolio.market
    if settings is None:
        raise ValueError("the portfolio has no [market] section")
    own = store is None
    store = store or Store(portfolio.storage.sqlite_path, create=False, readonly=True)
    try:
        dates = plan_dates(start, hours, portfolio.portfolio.timezone)
        first = dates[0] - dt.timedelta(days=settings.price_history_days)
        published = prices_between(store, settings.area, first, dates[-1])
    finally:
        if own:
            store.close()
    missing = [d for d in dates if d not in published]
    spot = {d: published[d] for d in dates if d in published}
    if missing:
        history = {d: v for d, v in published.items() if d < missing[0]}
        forecast = forecast_prices(history, missing, price_site(portfolio))
        spot |= {d: tuple(float(p) for p in forecast.p50[d]) for d in missing}
    tariff = portfolio.tariffs[portfolio.sites[0].tariff]
    return retail_prices(spot, settings, tariff, frozenset(missing))


def live_day_prices(portfolio: Portfolio, start: pd.Timestamp, hours: float, store: Store | None) -> DayPrices | None:
    """As :func:`market_day_prices` for the live loop, which must not stop: with too little
    history it plans on the fixed tariff and says so in the log."""
    try:
        return market_day_prices(portfolio, start, hours, store)
    except (PriceHistoryError, StoreError) as error:
        log.warning("planning on the fixed tariff: %s", error)
        return None


def forecast_slot_times(prices: DayPrices, index: pd.DatetimeIndex, timezone: str) -> list[str]:
    """ISO start times of the plan's steps priced by the forecast."""
    local = index.tz_convert(timezone)
    return [t.isoformat() for t in local if t.date() in prices.forecast_dates]


def store_path(portfolio: Portfolio, override: Path | None) -> Path:
    return Path(override) if override else Path(portfolio.storage.sqlite_path)
