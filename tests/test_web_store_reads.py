"""The store reads the console (and `ems status`) rely on, written through the store's own API:
newest rows per device by index lookups, the set-point log, bucketed series."""

from __future__ import annotations

import datetime as dt

import pytest

from ems.store import Store
from ems.store.reads import latest_setpoints, latest_values, series_of, setpoint_log

T0 = dt.datetime(2026, 4, 15, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "ems.sqlite")
    for n in range(12):  # a minute of 5-second polls
        now = T0 + dt.timedelta(seconds=5 * n)
        rows = [
            (now, "grid", "power_kw", 10.0 + n, "good"),
            (now, "bess", "power_kw", -n * 1.0, "good"),
            (now, "bess", "soc_fraction", 0.5 + n / 100, "good"),
        ]
        if n < 8:  # the charger stops answering after 40 s
            rows.append((now, "charger", "power_kw", 3.0, "good"))
        else:
            rows.append((now, "charger", "missing", 1.0, "missing"))
        store.record_telemetry(rows)
    store.record_setpoint(T0, "bess", -5.0, -5.0, "plan", "ratings: 50 kW")
    store.record_setpoint(T0 + dt.timedelta(seconds=30), "bess", 60.0, 50.0, "plan", "clamped to 50 kW")
    store.record_setpoint(T0 + dt.timedelta(seconds=40), "charger", 0.0, 0.0, "failsafe", "")
    yield store
    store.close()


def test_latest_telemetry_and_last_good_time(store):
    latest = {device: (time, quality) for device, time, quality in store.latest_telemetry()}
    end = T0 + dt.timedelta(seconds=55)
    assert latest == {"grid": (end, "good"), "bess": (end, "good"), "charger": (end, "missing")}
    assert store.last_good_time("charger") == T0 + dt.timedelta(seconds=35)
    assert store.last_good_time("grid") == end
    assert store.last_good_time("nobody") is None


def test_latest_values_are_the_newest_poll_of_each_device(store):
    values = latest_values(store, ["grid", "bess", "charger", "nobody"])
    assert set(values) == {"grid", "bess", "charger"}
    assert values["bess"]["soc_fraction"][1] == pytest.approx(0.61)
    assert values["grid"]["power_kw"] == (T0 + dt.timedelta(seconds=55), 21.0, "good")
    assert "power_kw" not in values["charger"] and values["charger"]["missing"][2] == "missing"


def test_latest_setpoints_and_the_log_with_reasons(store):
    latest = latest_setpoints(store, ["bess", "charger", "grid"])
    assert set(latest) == {"bess", "charger"}
    assert latest["bess"]["written_kw"] == 50.0 and latest["bess"]["reason"] == "clamped to 50 kW"
    log = setpoint_log(store, T0, T0 + dt.timedelta(minutes=1))
    assert [(r["device"], r["status"]) for r in log] == [("charger", "failsafe"), ("bess", "plan"), ("bess", "plan")]
    assert len(setpoint_log(store, T0 + dt.timedelta(seconds=31), T0 + dt.timedelta(minutes=1))) == 1


def test_series_are_averaged_per_bucket_and_only_good_values(store):
    series = series_of(store, ["grid", "charger"], "power_kw", T0, T0 + dt.timedelta(minutes=1), bucket_s=30)
    assert [v for _t, v in series["grid"]] == [pytest.approx(12.5), pytest.approx(18.5)]  # 10..15, 16..21
    assert [t for t, _v in series["charger"]] == [T0, T0 + dt.timedelta(seconds=30)]  # 30-35 s only, then missing
