"""The models' settings from the portfolio file's ``[forecasting]`` table."""

from __future__ import annotations

from ems.config.forecasting import ForecastingSettings
from forecasting.load import LoadSettings
from forecasting.pv import PvSettings


def pv_settings(config: ForecastingSettings) -> PvSettings:
    return PvSettings(
        recent_hours=config.pv_recent_hours,
        climatology_days=config.pv_climatology_days,
        decorrelation_hours=config.pv_decorrelation_hours,
        default_clear_sky_index=config.default_clear_sky_index,
    )


def load_settings(config: ForecastingSettings) -> LoadSettings:
    return LoadSettings(
        history_weeks=config.load_history_weeks,
        level_days=config.load_level_days,
        weekday_detail=config.load_weekday_detail,
        holiday_country=config.holiday_country,
        holiday_subdivision=config.holiday_subdivision,
    )
