"""The console's bucketed series keep closed buckets between requests and still equal a full
read of the store, as new telemetry arrives, and when the console's clock goes back."""

from __future__ import annotations

import datetime as dt
import random

from ems.store import Store
from ems.store.reads import series_of
from ems.web.series_cache import BucketedSeries

T0 = dt.datetime(2026, 4, 15, 0, 0, tzinfo=dt.UTC)
DEVICES = ["grid", "bess"]


def _poll(store: Store, at: dt.datetime, rng: random.Random) -> None:
    store.record_telemetry([(at, device, "power_kw", rng.uniform(-50, 50), "good") for device in DEVICES])


def test_each_refresh_equals_a_full_read_while_polls_arrive(tmp_path):
    store, rng, cache = Store(tmp_path / "ems.sqlite"), random.Random(7), BucketedSeries()
    reads = []
    now = T0
    for _refresh in range(12):  # a refresh every 7 minutes, polls every 10 s in between
        for _ in range(42):
            now += dt.timedelta(seconds=10)
            _poll(store, now, rng)
        until = now + dt.timedelta(seconds=1)
        reads.append(
            cache.read(store, DEVICES, "power_kw", T0, until, 300)
            == series_of(store, DEVICES, "power_kw", T0, until, 300)
        )
    assert reads == [True] * 12
    # the kept buckets were really used: a row written late into a closed bucket is not read again
    store.record_telemetry([(T0 + dt.timedelta(seconds=20), "grid", "power_kw", 1e4, "good")])
    until = now + dt.timedelta(seconds=1)
    assert (
        cache.read(store, DEVICES, "power_kw", T0, until, 300)["grid"][0]
        != series_of(store, DEVICES, "power_kw", T0, until, 300)["grid"][0]
    )
    store.close()


def test_a_clock_that_goes_back_reads_the_store_again(tmp_path):
    store, rng, cache = Store(tmp_path / "ems.sqlite"), random.Random(3), BucketedSeries()
    for n in range(360):  # an hour of 10 s polls
        _poll(store, T0 + dt.timedelta(seconds=10 * n), rng)
    late, early = T0 + dt.timedelta(minutes=59), T0 + dt.timedelta(minutes=20)
    cache.read(store, DEVICES, "power_kw", T0, late, 300)
    assert cache.read(store, DEVICES, "power_kw", T0, early, 300) == series_of(
        store, DEVICES, "power_kw", T0, early, 300
    )
    store.close()
