"""Data files: clear errors for bad files, robust handling of gaps, repeats and DST."""

import numpy as np
import pandas as pd
import pytest

from forecasting.loaders import (
    DataFileError,
    pvlib_data_file,
    read_power_csv,
    read_request_log,
    read_tmy3,
    read_weather_forecast,
)
from tests.forecasting_fixtures import write_csv

GOOD = """
time,power_kw
2026-04-15T10:00:00+09:00,10.0
2026-04-15T10:30:00+09:00,12.0
2026-04-15T11:00:00+09:00,13.0
2026-04-15T12:00:00+09:00,11.0
"""


def test_gaps_become_missing_steps(tmp_path):
    series = read_power_csv(write_csv(tmp_path / "pv.csv", GOOD), expected_max_kw=30)
    assert len(series) == 5 and series.attrs["gaps"] == 1
    assert np.isnan(series.loc["2026-04-15 11:30"])
    assert str(series.index.tz) == "Asia/Tokyo"


def test_units_are_converted_from_the_column_name(tmp_path):
    watts = write_csv(
        tmp_path / "w.csv", "time,power_w\n2026-04-15T10:00:00+09:00,1500\n2026-04-15T10:30:00+09:00,2500\n"
    )
    assert list(read_power_csv(watts).to_numpy()) == pytest.approx([1.5, 2.5])
    megawatts = write_csv(
        tmp_path / "mw.csv", "time,demand_mw\n2026-04-15T10:00:00+09:00,1.5\n2026-04-15T10:30:00+09:00,2\n"
    )
    assert list(read_power_csv(megawatts).to_numpy()) == pytest.approx([1500.0, 2000.0])


def test_missing_column_is_named(tmp_path):
    path = write_csv(tmp_path / "one.csv", "time\n2026-04-15T10:00:00+09:00\n")
    with pytest.raises(DataFileError, match=r"one\.csv: \(header\): expected two columns 'time,<name>_kw'"):
        read_power_csv(path)


def test_unit_without_suffix_is_rejected(tmp_path):
    path = write_csv(tmp_path / "u.csv", GOOD.replace("power_kw", "power"))
    with pytest.raises(DataFileError, match="must end in its unit"):
        read_power_csv(path)


def test_watts_in_a_kw_column_are_caught(tmp_path):
    path = write_csv(tmp_path / "pv.csv", GOOD.replace(",12.0", ",12000.0"))
    with pytest.raises(
        DataFileError, match=r"row 3, column 'power_kw': 12000 kW is over 1.5 x the rating of 30 kW: wrong unit"
    ):
        read_power_csv(path, expected_max_kw=30)


def test_time_going_backwards_is_rejected(tmp_path):
    text = GOOD.replace("2026-04-15T11:00:00+09:00", "2026-04-15T09:00:00+09:00")
    with pytest.raises(DataFileError, match=r"row 4: time 2026-04-15 09:00:00\+09:00 is earlier than the row before"):
        read_power_csv(write_csv(tmp_path / "b.csv", text))


def test_repeated_time_with_different_values_is_rejected_and_identical_repeat_dropped(tmp_path):
    clash = GOOD.replace("2026-04-15T10:30:00+09:00,12.0", "2026-04-15T10:00:00+09:00,12.0")
    with pytest.raises(DataFileError, match=r"rows 2 and 3: the same time .* appears twice with different values"):
        read_power_csv(write_csv(tmp_path / "d.csv", clash))
    same = GOOD.replace("2026-04-15T10:30:00+09:00,12.0", "2026-04-15T10:00:00+09:00,10.0")
    assert read_power_csv(write_csv(tmp_path / "s.csv", same)).loc["2026-04-15 10:00"] == 10.0


def test_unparsable_time_and_value_name_their_row(tmp_path):
    with pytest.raises(DataFileError, match=r"row 3, column 'time': not an ISO 8601 time: 'noon'"):
        read_power_csv(write_csv(tmp_path / "t.csv", GOOD.replace("2026-04-15T10:30:00+09:00", "noon")))
    with pytest.raises(DataFileError, match=r"row 4, column 'power_kw': not a number: 'abc'"):
        read_power_csv(write_csv(tmp_path / "v.csv", GOOD.replace("13.0", "abc")))


def test_local_times_across_daylight_saving_changes(tmp_path):
    autumn = "time,load_kw\n" + "\n".join(
        f"2025-10-26T{t},{v}"
        for t, v in (("00:30", 1), ("01:00", 2), ("01:30", 3), ("01:00", 4), ("01:30", 5), ("02:00", 6))
    )
    series = read_power_csv(write_csv(tmp_path / "autumn.csv", autumn), tz="Europe/London")
    assert list(series.to_numpy()) == [1, 2, 3, 4, 5, 6]  # the repeated hour is kept in order
    assert series.index.tz_convert("UTC")[3] == pd.Timestamp("2025-10-26T01:00", tz="UTC")
    spring = "time,load_kw\n2025-03-30T00:30,1\n2025-03-30T01:30,2\n"
    with pytest.raises(DataFileError, match="do not fit the Europe/London clock"):
        read_power_csv(write_csv(tmp_path / "spring.csv", spring), tz="Europe/London")


def test_tmy3_loader_labels_interval_starts_and_rejects_other_files(tmp_path):
    tmy = read_tmy3(pvlib_data_file("703165TY.csv"))
    assert tmy.name == "SAND POINT" and tmy.latitude_deg == pytest.approx(55.317)
    assert len(tmy.weather) == 8760 and tmy.weather.index[0].hour == 0
    assert tmy.weather.index.is_monotonic_increasing
    with pytest.raises(DataFileError, match="not a TMY3 file"):
        read_tmy3(write_csv(tmp_path / "x.csv", GOOD))


def test_weather_file_checks_ranges_and_columns(tmp_path):
    ok = write_csv(
        tmp_path / "w.csv", "time,cloud_cover_percent,temp_air_c\n2026-04-15T09:00,20,18\n2026-04-15T10:00,40,19\n"
    )
    frame = read_weather_forecast(ok)
    assert list(frame.columns) == ["cloud_cover", "temp_air"]
    fraction = write_csv(tmp_path / "f.csv", "time,cloud_cover_percent\n2026-04-15T09:00,0.2\n2026-04-15T10:00,140\n")
    with pytest.raises(DataFileError, match=r"row 3, column 'cloud_cover_percent': 140 is outside 0..100"):
        read_weather_forecast(fraction)
    neither = write_csv(tmp_path / "n.csv", "time,ghi\n2026-04-15T09:00,200\n")
    with pytest.raises(DataFileError, match="needs exactly one of ghi_w_per_m2, cloud_cover_percent"):
        read_weather_forecast(neither)


def test_request_log_errors(tmp_path):
    header = "request_id,time,origin_lat,origin_lon,dest_lat,dest_lon,passengers\n"
    missing = write_csv(tmp_path / "m.csv", "request_id,time,origin_lat\n1,2026-04-15T09:00,33.0\n")
    with pytest.raises(DataFileError, match="missing column.*origin_lon"):
        read_request_log(missing)
    zero = write_csv(tmp_path / "z.csv", header + "r1,2026-04-15T09:00,32.99,130.43,32.98,130.44,0\n")
    with pytest.raises(DataFileError, match=r"row 2 \(request r1\): passengers=0"):
        read_request_log(zero)
