"""Settings of the forecasters (the ``[forecasting]`` table of a portfolio file).

Every key has a default, so a file without the table is valid. Documented in docs/forecasting.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ForecastingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    holiday_country: str | None = Field(
        "JP", description="ISO country of public holidays (treated as Sundays); none: no holidays"
    )
    holiday_subdivision: str | None = Field(None, description="region code of the holiday calendar, e.g. 'ENG'")
    default_clear_sky_index: float = Field(
        0.75, gt=0, le=1.2, description="PV output as a fraction of clear-sky output when nothing is measured"
    )
    pv_recent_hours: float = Field(
        3.0, gt=0, description="daylight hours of measured PV behind the current clear-sky index"
    )
    pv_climatology_days: int = Field(
        14, ge=1, description="days behind the typical clear-sky index the forecast reverts to"
    )
    pv_decorrelation_hours: float = Field(4.0, gt=0, description="e-folding time of the current clear-sky index [h]")
    load_history_weeks: int = Field(4, ge=1, description="weeks of measured load behind the day-type profiles")
    load_level_days: int = Field(1, ge=1, description="days of measured load the profile is rescaled to")
    load_weekday_detail: float = Field(
        1.0, ge=0, le=1, description="0: one profile for Monday-Friday; 1: each weekday keeps its own shape"
    )
    saturday_activity_fraction: float = Field(
        0.6, ge=0, le=1, description="without measurements: share of a config profile's daytime rise kept on Saturdays"
    )
    holiday_activity_fraction: float = Field(
        0.35, ge=0, le=1, description="without measurements: share of the daytime rise kept on Sundays and holidays"
    )
