"""Simulated time shared by separate processes.

``ems run --twin``, ``ems twin`` and the dispatcher's commands take ``--speed S`` and
``--start T``: simulated time is ``T + (real time - t0) x S``. Each process's ``t0`` is its own
start unless ``--epoch E`` (Unix seconds) pins it, so processes started one after the other
(a city day, a test) agree on the simulated time to the millisecond.
"""

from __future__ import annotations

import datetime as dt
import time


class SharedClock:
    def __init__(self, start: dt.datetime, speed: float = 1.0, epoch_unix_s: float | None = None):
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("the clock's start must be timezone-aware")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self.epoch_unix_s = time.time() if epoch_unix_s is None else epoch_unix_s

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(time.time() - self.epoch_unix_s) * self.speed)

    def real_seconds(self, simulated_s: float) -> float:
        return simulated_s / self.speed
