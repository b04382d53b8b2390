"""PV, site-load and ride-demand forecasts: pandas in, pandas out, with backtests.

The planner's entry point is :func:`portfolio_forecast` (see docs/forecasting.md). Models are
pure functions of their inputs; all file reading is in :mod:`forecasting.loaders`.
"""

from forecasting.portfolio import PortfolioForecast, forecast_grid, portfolio_forecast

__all__ = ["PortfolioForecast", "forecast_grid", "portfolio_forecast"]
