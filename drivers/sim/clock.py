"""Clocks for the simulated devices: injectable, and able to run faster than real time."""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


EPOCH_ENV = "EMS_CLOCK_EPOCH"


class ScaledClock:
    """Simulated time that starts at ``start`` and runs ``speed`` times faster than real time.

    The clock reads ``start`` when it is made, or, when ``epoch_s`` is given (or the environment
    variable ``EMS_CLOCK_EPOCH`` holds one), at that Unix time: processes started one after
    another with the same start, speed and epoch (``ems city``) then read the same simulated time.
    """

    def __init__(self, start: dt.datetime, speed: float = 1.0, epoch_s: float | None = None):
        if start.tzinfo is None:
            raise ValueError("the clock's start must be timezone-aware")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        if epoch_s is None and os.environ.get(EPOCH_ENV):
            try:
                epoch_s = float(os.environ[EPOCH_ENV])
            except ValueError:
                raise ValueError(f"{EPOCH_ENV}={os.environ[EPOCH_ENV]!r} is not a Unix time in seconds") from None
        self._t0 = time.monotonic() - (time.time() - epoch_s if epoch_s is not None else 0.0)

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(time.monotonic() - self._t0) * self.speed)


class ManualClock:
    """Time that moves only when told to (tests, and stepping a twin by hand)."""

    def __init__(self, start: dt.datetime):
        if start.tzinfo is None:
            raise ValueError("the clock's start must be timezone-aware")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float) -> dt.datetime:
        self._now += dt.timedelta(seconds=seconds)
        return self._now
