"""Service-day clock: the dispatcher counts seconds from local midnight of the service day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class ServiceClock:
    date: dt.date
    timezone: str = "Asia/Tokyo"

    @property
    def midnight(self) -> dt.datetime:
        return dt.datetime.combine(self.date, dt.time(0, 0), tzinfo=ZoneInfo(self.timezone))

    def to_s(self, moment: dt.datetime) -> float:
        """Seconds since local midnight of the service day (``moment`` must be tz-aware)."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"time {moment.isoformat()} has no UTC offset")
        return (moment - self.midnight).total_seconds()

    def to_datetime(self, seconds: float) -> dt.datetime:
        return self.midnight + dt.timedelta(seconds=seconds)

    def time_of_day_s(self, value: dt.time) -> float:
        return value.hour * 3600 + value.minute * 60 + value.second
