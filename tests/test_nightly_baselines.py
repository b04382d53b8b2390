"""High 4 of 5 and like days, against hand-computed examples; measured history from CSV."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from simulations.baselines import HistoryError, adjustment_window, high_4_of_5, is_holiday_like, like_days, read_history_csv


def flat(value: float) -> np.ndarray:
    return np.full(48, float(value))


def test_high_4_of_5_matches_a_hand_computed_example():
    event = np.zeros(48, dtype=bool)
    event[34:40] = True  # 17:00-20:00
    day5 = flat(50.0)
    day5[event] = 130.0  # low all day but highest in the event's slots: ranked by those slots
    history = {dt.date(2026, 4, 8): flat(100), dt.date(2026, 4, 9): flat(120), dt.date(2026, 4, 10): flat(90),
               dt.date(2026, 4, 13): flat(110), dt.date(2026, 4, 14): day5}
    # Kept: day5 (130), 9th (120), 13th (110), 8th (100); the 10th (90) is dropped.
    # Event slots: (130 + 120 + 110 + 100) / 4 = 115. Adjustment window 13:00-16:00 (slots 26-31):
    # the average there is (50 + 120 + 110 + 100) / 4 = 95; the event day reads 101 there: +6.
    same_day = flat(0.0)
    same_day[26:32] = 101.0
    result = high_4_of_5(history, event, same_day)
    assert result.chosen_days == (dt.date(2026, 4, 14), dt.date(2026, 4, 9), dt.date(2026, 4, 13), dt.date(2026, 4, 8))
    assert result.adjustment_kw == pytest.approx(6.0)
    assert result.baseline_kw[event] == pytest.approx(np.full(6, 121.0))
    assert result.unadjusted_kw[event] == pytest.approx(np.full(6, 115.0))
    assert result.baseline_kw[0] == pytest.approx(95.0 + 6.0)


def test_adjustment_window_is_four_to_one_hour_before_the_event():
    event = np.zeros(48, dtype=bool)
    event[34:40] = True
    assert list(np.flatnonzero(adjustment_window(event))) == [26, 27, 28, 29, 30, 31]
    early = np.zeros(48, dtype=bool)
    early[2:4] = True  # 01:00: the window would start before midnight and end at 00:00
    assert not adjustment_window(early).any()


def test_like_days_skip_weekends_and_japanese_holidays():
    # Thursday 7 May 2026 follows Golden Week: 29 April (Showa Day) and 3-6 May are holidays.
    assert like_days(dt.date(2026, 5, 7)) == [dt.date(2026, 5, 1), dt.date(2026, 4, 30), dt.date(2026, 4, 28),
                                             dt.date(2026, 4, 27), dt.date(2026, 4, 24)]
    # Saturday 9 May: the like days are the weekend and holidays before it.
    assert like_days(dt.date(2026, 5, 9)) == [dt.date(2026, 5, 6), dt.date(2026, 5, 5), dt.date(2026, 5, 4),
                                             dt.date(2026, 5, 3), dt.date(2026, 5, 2)]
    assert is_holiday_like(dt.date(2026, 4, 29)) and not is_holiday_like(dt.date(2026, 4, 30))


def test_measured_history_is_read_as_half_hour_means_per_whole_day(tmp_path):
    path = tmp_path / "history.csv"
    times = [f"2026-04-14T{h:02d}:{m:02d}:00+09:00" for h in range(24) for m in (0, 15, 30, 45)]
    values = [10.0 + (i // 2) % 2 * 4 for i in range(len(times))]  # pairs of 10 and 14 -> means alternate
    path.write_text("time,value\n" + "\n".join(f"{t},{v}" for t, v in zip(times, values)) + "\n2026-04-15T00:00:00+09:00,99\n")
    days = read_history_csv(path, "Asia/Tokyo")
    assert list(days) == [dt.date(2026, 4, 14)]  # the single reading of the 15th is not a whole day
    assert days[dt.date(2026, 4, 14)][:4] == pytest.approx([10.0, 14.0, 10.0, 14.0])


def test_a_bad_history_row_is_named(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("time,value\n2026-04-14T00:00:00+09:00,10\n2026-04-14T00:30:00+09:00,ten\n")
    with pytest.raises(HistoryError, match=r"history.csv: line 3: unreadable value 'ten'"):
        read_history_csv(path, "Asia/Tokyo")
    path.write_text("when,value\n")
    with pytest.raises(HistoryError, match=r"missing column\(s\) \['time'\]"):
        read_history_csv(path, "Asia/Tokyo")


def test_measured_history_gives_the_five_latest_like_days_present(tmp_path):
    from simulations.nightly import history_from_csv
    from simulations.scenarios import MEASURED

    index = pd.date_range("2026-04-01", "2026-04-15", freq="30min", tz="Asia/Tokyo", inclusive="left")
    frame = pd.DataFrame({"time": index, "value": [float(t.day) for t in index]})
    frame = frame[frame["time"].dt.date != dt.date(2026, 4, 13)]  # a day the meter missed
    path = tmp_path / "history.csv"
    frame.assign(time=frame["time"].map(lambda t: t.isoformat())).to_csv(path, index=False)
    history = history_from_csv(path, dt.date(2026, 4, 15), "Asia/Tokyo")
    assert sorted(history, reverse=True) == [dt.date(2026, 4, 14), dt.date(2026, 4, 10), dt.date(2026, 4, 9),
                                             dt.date(2026, 4, 8), dt.date(2026, 4, 7)]
    assert history[dt.date(2026, 4, 9)][MEASURED] == [9.0] * 48


def test_a_night_run_at_one_in_the_morning_simulates_the_next_day():
    from simulations.nightly import night_date

    run_at = dt.datetime(2026, 4, 13, 16, 0, tzinfo=dt.timezone.utc)  # 01:00 on 14 April in Tokyo
    assert night_date(run_at, "Asia/Tokyo") == dt.date(2026, 4, 15)
    with pytest.raises(ValueError, match="timezone-aware"):
        night_date(dt.datetime(2026, 4, 14, 1, 0), "Asia/Tokyo")
