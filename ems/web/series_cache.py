"""Bucketed telemetry series with the closed buckets kept between requests.

The Schedule and Fleet pages average a day of telemetry per device into 5-minute buckets at
every refresh; with a week in the store that query is most of a page's time. Telemetry is
written in time order as it is polled, so a bucket that ended one bucket before ``until`` no
longer changes: it is kept, and each request reads only the rows from there on.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict

from ems.store import Store
from ems.store.reads import series_of
from ems.store.sqlite import from_ms, to_ms

Series = dict[str, list[tuple[dt.datetime, float]]]
KEPT_QUERIES = 16  # one per page, window and quantity in practice; the oldest goes first


class BucketedSeries:
    def __init__(self) -> None:
        self._kept: OrderedDict[tuple, tuple[int, Series]] = OrderedDict()
        self._lock = threading.Lock()  # pages run in a thread pool

    def read(
        self,
        store: Store,
        devices: list[str],
        quantity: str,
        since: dt.datetime,
        until: dt.datetime,
        bucket_s: int = 300,
    ) -> Series:
        """As :func:`ems.store.reads.series_of`, reading again only the buckets still open."""
        bucket_ms = bucket_s * 1000
        cutoff_ms = (to_ms(until) // bucket_ms - 1) * bucket_ms  # buckets before this one are closed
        key = (id(store), tuple(devices), quantity, to_ms(since), bucket_s)
        with self._lock:
            kept_until_ms, kept = self._kept.get(key, (to_ms(since), {}))
        if kept_until_ms > to_ms(until):  # the clock went back (a console looking at a past run)
            kept_until_ms, kept = to_ms(since), {}
        fresh = series_of(store, devices, quantity, from_ms(kept_until_ms), until, bucket_s)
        merged: Series = {device: list(values) for device, values in kept.items()}
        for device, values in fresh.items():
            merged.setdefault(device, []).extend(values)
        if cutoff_ms > kept_until_ms:
            closed = {device: [(t, v) for t, v in values if to_ms(t) < cutoff_ms] for device, values in merged.items()}
            with self._lock:
                self._kept[key] = (cutoff_ms, closed)
                self._kept.move_to_end(key)
                while len(self._kept) > KEPT_QUERIES:
                    self._kept.popitem(last=False)
        return merged


def bucketed_series(
    extras: dict,
    store: Store,
    devices: list[str],
    quantity: str,
    since: dt.datetime,
    until: dt.datetime,
    bucket_s: int = 300,
) -> Series:
    """The console's one :class:`BucketedSeries` (kept in ``Console.extras``)."""
    cache = extras.setdefault("bucketed_series", BucketedSeries())
    return cache.read(store, devices, quantity, since, until, bucket_s)
