"""Settings of the live control loop and of storage: ``[control]`` and ``[storage]``."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class InfluxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="InfluxDB v2 write API base URL, e.g. http://127.0.0.1:8086")
    org: str = Field("ems", description="organisation")
    bucket: str = Field("ems", description="bucket")
    token_env: str | None = Field(None, description="environment variable holding the API token (never the TOML)")
    timeout_s: float = Field(2.0, gt=0, description="a write that takes longer counts as failed")
    flush_s: float = Field(10.0, gt=0, description="how often the outbox is sent")


class StorageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sqlite_path: str = Field("out/ems.sqlite", description="the embedded store; relative to the working directory")
    influx: InfluxSettings | None = Field(None, description="mirror time series to InfluxDB when given")
    retention_days: float | None = Field(
        30.0,
        gt=0,
        description="telemetry, set-points, job runs and plans older than this are dropped by an hourly job "
        "(events are kept); none: keep all",
    )


class ControlSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    poll_s: float = Field(5.0, gt=0, description="telemetry polling interval")
    replan_minutes: int = Field(5, ge=1, le=60, description="intraday re-plan interval")
    day_ahead_time: dt.time = Field(
        dt.time(9, 30), description="local time of the daily day-ahead plan (before the 10:00 gate)"
    )
    day_ahead_dir: str = Field("out/day-ahead", description="where day-ahead plans are written for submission")
    forecast_refresh_minutes: int = Field(30, ge=1, description="forecast refresh interval")
    nightly_time: dt.time = Field(dt.time(1, 0), description="local time of the nightly simulation")
    nightly_dir: str = Field(
        "out/nightly", description="where each night's simulation report is written, one folder a day"
    )
    watchdog_s: float = Field(30.0, gt=0, description="the watchdog's check interval")
    hold_threshold_kw: float = Field(
        1.0, ge=0, description="a device keeps its set-point unless the new plan differs by more than this"
    )
    charger_failsafe_kw: float = Field(
        3.0,
        ge=0,
        description="a charger without a failsafe_kw of its own charges at this power (or its rating if lower) "
        "when the controller loses the plan or the device; it never discharges then",
    )
    change_penalty_yen_per_kw: float = Field(
        0.5, ge=0, description="cost per kW of set-point change in a re-plan, against flapping"
    )
