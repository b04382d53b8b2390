"""DR baselines after the ERAB guideline, against examples computed by hand; measured history."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from simulations.baselines import (
    HistoryError,
    adjustment_slots,
    dr_baseline,
    is_holiday_like,
    like_days,
    read_history_csv,
    rule_for,
)

D = dt.date


def flat(value: float) -> np.ndarray:
    return np.full(48, float(value))


def event_mask(first: int, last: int) -> np.ndarray:
    mask = np.zeros(48, dtype=bool)
    mask[first:last] = True
    return mask


EVENING = event_mask(34, 40)  # 17:00-20:00


def test_worked_example_high_4_of_5_with_low_day_past_dr_day_and_same_day_adjustment():
    # Event: Wednesday 15 April 2026, 17:00-20:00 (slots 34-39), down. Monday 13 April was a DR day.
    # Like days, newest first, skipping the 13th: 14th (Tue), 10th (Fri), 9th (Thu), 8th (Wed), 7th (Tue).
    history = {
        D(2026, 4, 14): flat(100),
        D(2026, 4, 13): flat(500),
        D(2026, 4, 10): flat(120),
        D(2026, 4, 9): flat(20),
        D(2026, 4, 8): flat(110),
        D(2026, 4, 7): flat(90),
    }
    # Event-slot means 100, 120, 20, 110, 90: mean 440 / 5 = 88; 25 % of it is 22 and the 9th (20) is below:
    # a low day, left out. Of the other four, the 4 highest are all of them: (120 + 110 + 100 + 90) / 4 = 105.
    # Adjustment window 4 h to 1 h before 17:00 = 13:00-16:00 = slots 26-31.
    # Metered that day (with the event) there: 110, 112, 114, 116, 118, 120 -> mean 690 / 6 = 115.
    # Like-day average there: 105. Adjustment 115 - 105 = +10 kW; cap 20 % of 105 = 21 kW: not reached.
    metered = flat(0.0)
    metered[26:32] = [110, 112, 114, 116, 118, 120]
    metered[EVENING] = 95.0  # during the event
    result = dr_baseline(
        history, D(2026, 4, 15), EVENING, "down", {D(2026, 4, 15): metered}, frozenset({D(2026, 4, 13)})
    )
    assert result.rule == "High 4 of 5"
    assert result.like_days == (D(2026, 4, 14), D(2026, 4, 10), D(2026, 4, 9), D(2026, 4, 8), D(2026, 4, 7))
    assert result.low_days == (D(2026, 4, 9),)
    assert result.chosen_days == (D(2026, 4, 10), D(2026, 4, 8), D(2026, 4, 14), D(2026, 4, 7))
    assert result.unadjusted_kw[EVENING].tolist() == [105.0] * 6
    assert result.raw_adjustment_kw == pytest.approx(10.0)
    assert result.cap_kw == pytest.approx(21.0)
    assert result.baseline_kw[EVENING] == pytest.approx([115.0] * 6)
    # Delivered: (115 - 95) kW x 3 h = 60 kWh.
    delivered_kwh = float(np.sum(result.baseline_kw[EVENING] - metered[EVENING]) * 0.5)
    assert delivered_kwh == pytest.approx(60.0)
    # The same day metered 25 kW higher in the window: raw +35 kW, capped at +21 kW -> baseline 126 kW.
    metered[26:32] += 25.0
    capped = dr_baseline(
        history, D(2026, 4, 15), EVENING, "down", {D(2026, 4, 15): metered}, frozenset({D(2026, 4, 13)})
    )
    assert capped.raw_adjustment_kw == pytest.approx(35.0)
    assert capped.adjustment_kw == pytest.approx(21.0)
    assert capped.baseline_kw[EVENING] == pytest.approx([126.0] * 6)


def test_a_past_dr_day_left_in_would_be_a_like_day():
    history = {
        D(2026, 4, 14): flat(100),
        D(2026, 4, 13): flat(500),
        D(2026, 4, 10): flat(120),
        D(2026, 4, 9): flat(80),
        D(2026, 4, 8): flat(110),
        D(2026, 4, 7): flat(90),
    }
    kept = dr_baseline(history, D(2026, 4, 15), EVENING, "down", None)
    assert D(2026, 4, 13) in kept.chosen_days  # without the DR-day list it ranks first
    left_out = dr_baseline(history, D(2026, 4, 15), EVENING, "down", None, frozenset({D(2026, 4, 13)}))
    assert D(2026, 4, 13) not in left_out.like_days and left_out.adjustment_kw == 0.0


def test_up_events_keep_the_lowest_days():
    history = {
        D(2026, 4, 14): flat(100),
        D(2026, 4, 13): flat(120),
        D(2026, 4, 10): flat(60),
        D(2026, 4, 9): flat(110),
        D(2026, 4, 8): flat(90),
    }
    midday = event_mask(22, 28)
    # no low day (mean 96, 25 % = 24); Low 4 of 5 keeps 60, 90, 100, 110 -> 90; High would give 105
    low = dr_baseline(history, D(2026, 4, 15), midday, "up", None)
    assert low.rule == "Low 4 of 5" and low.unadjusted_kw[midday].tolist() == [90.0] * 6
    assert dr_baseline(history, D(2026, 4, 15), midday, "down", None).unadjusted_kw[midday].tolist() == [105.0] * 6


def test_weekends_and_holidays_use_high_2_of_3():
    # Saturday 18 April 2026: like days are the weekend days before it: 12th (Sun), 11th (Sat), 5th (Sun).
    history = {D(2026, 4, 12): flat(40), D(2026, 4, 11): flat(60), D(2026, 4, 5): flat(50), D(2026, 4, 17): flat(300)}
    result = dr_baseline(history, D(2026, 4, 18), EVENING, "down", None)
    assert rule_for(D(2026, 4, 18), "down").name == "High 2 of 3"
    assert result.like_days == (D(2026, 4, 12), D(2026, 4, 11), D(2026, 4, 5))
    assert result.unadjusted_kw[EVENING].tolist() == [55.0] * 6  # (60 + 50) / 2
    # Wednesday 29 April (Showa Day) is a holiday: also 2 of 3
    assert rule_for(D(2026, 4, 29), "up").name == "Low 2 of 3"


def test_the_adjustment_window_of_an_early_event_reaches_into_the_day_before():
    early = event_mask(4, 8)  # 02:00-04:00: the window is 22:00-01:00, slots -4..1
    assert adjustment_slots(early).tolist() == [-4, -3, -2, -1, 0, 1]
    assert adjustment_slots(EVENING).tolist() == [26, 27, 28, 29, 30, 31]
    day_kw = flat(50)
    day_kw[44:48] = 30.0  # every day reads 30 kW from 22:00, 50 kW before
    history = {D(2026, 4, 7) + dt.timedelta(days=k): day_kw for k in range(8)}  # 7th to 14th
    # like days 14, 13, 10, 9, 8; their windows: the evening before (4 x 30) and 00:00-01:00 (2 x 50):
    # 220 / 6. The event day's: the 14th's evening, metered at 40 (4 x 40), and its own 70 (2 x 70): 300 / 6
    evening_before = flat(0.0)
    evening_before[44:48] = 40.0
    metered = {D(2026, 4, 15): flat(70), D(2026, 4, 14): evening_before}
    result = dr_baseline(history, D(2026, 4, 15), early, "down", metered)
    assert result.raw_adjustment_kw == pytest.approx((300 - 220) / 6)
    assert result.adjustment_kw == pytest.approx(10.0)  # capped at 20 % of 50
    with pytest.raises(HistoryError, match="event day: no values for 2026-04-14"):
        dr_baseline(history, D(2026, 4, 15), early, "down", {D(2026, 4, 15): flat(70)})


def test_like_days_skip_weekends_and_japanese_holidays():
    # Thursday 7 May 2026 follows Golden Week: 29 April (Showa Day) and 3-6 May are holidays.
    assert like_days(D(2026, 5, 7)) == [D(2026, 5, 1), D(2026, 4, 30), D(2026, 4, 28), D(2026, 4, 27), D(2026, 4, 24)]
    assert like_days(D(2026, 5, 9), 3) == [D(2026, 5, 6), D(2026, 5, 5), D(2026, 5, 4)]
    assert is_holiday_like(D(2026, 4, 29)) and not is_holiday_like(D(2026, 4, 30))


def test_measured_history_is_read_per_site_with_flagged_dr_days(tmp_path):
    path = tmp_path / "history.csv"
    times = [f"2026-04-14T{h:02d}:{m:02d}:00+09:00" for h in range(24) for m in (0, 15, 30, 45)]
    rows = [
        f"{t},{10.0 + (i // 2) % 2 * 4},hall,{1 if t.startswith('2026-04-14T17') else 0}" for i, t in enumerate(times)
    ]
    rows += [f"{t},5,depot,0" for t in times]
    path.write_text("time,value,site,dr_event\n" + "\n".join(rows) + "\n2026-04-15T00:00:00+09:00,99,hall,0\n")
    days, dr_days = read_history_csv(path, "Asia/Tokyo")
    assert sorted(days) == ["depot", "hall"] and list(days["hall"]) == [D(2026, 4, 14)]
    assert days["hall"][D(2026, 4, 14)][:4] == pytest.approx([10.0, 14.0, 10.0, 14.0])
    assert dr_days == frozenset({D(2026, 4, 14)})


def test_a_bad_history_row_is_named(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("time,value\n2026-04-14T00:00:00+09:00,10\n2026-04-14T00:30:00+09:00,ten\n")
    with pytest.raises(HistoryError, match=r"history.csv: line 3: unreadable value 'ten'"):
        read_history_csv(path, "Asia/Tokyo")
    path.write_text("time,value,dr_event\n2026-04-14T00:00:00+09:00,10,yes\n")
    with pytest.raises(HistoryError, match=r"history.csv: line 2: unreadable dr_event 'yes'"):
        read_history_csv(path, "Asia/Tokyo")
    path.write_text("when,value\n")
    with pytest.raises(HistoryError, match=r"missing column\(s\) \['time'\]"):
        read_history_csv(path, "Asia/Tokyo")


def test_measured_history_flags_and_gaps_decide_the_like_days(tmp_path):
    from simulations.nightly import history_from_csv

    index = pd.date_range("2026-04-01", "2026-04-15", freq="30min", tz="Asia/Tokyo", inclusive="left")
    frame = pd.DataFrame(
        {
            "time": index,
            "value": [float(t.day) for t in index],
            "dr_event": [int(t.day == 10 and t.hour == 17) for t in index],
        }
    )
    frame = frame[frame["time"].dt.date != D(2026, 4, 13)]  # a day the meter missed
    path = tmp_path / "history.csv"
    frame.assign(time=frame["time"].map(lambda t: t.isoformat())).to_csv(path, index=False)
    history, dr_days = history_from_csv(path, D(2026, 4, 15), "Asia/Tokyo")
    assert dr_days == frozenset({D(2026, 4, 10)})
    days = {day: np.asarray(sites["*"]) for day, sites in history.items()}
    result = dr_baseline(days, D(2026, 4, 15), EVENING, "down", None, dr_days)
    assert result.like_days == (D(2026, 4, 14), D(2026, 4, 9), D(2026, 4, 8), D(2026, 4, 7), D(2026, 4, 6))


def test_a_night_run_at_one_in_the_morning_simulates_the_next_day():
    from simulations.nightly import night_date

    run_at = dt.datetime(2026, 4, 13, 16, 0, tzinfo=dt.UTC)  # 01:00 on 14 April in Tokyo
    assert night_date(run_at, "Asia/Tokyo") == D(2026, 4, 15)
    with pytest.raises(ValueError, match="timezone-aware"):
        night_date(dt.datetime(2026, 4, 14, 1, 0), "Asia/Tokyo")


def test_the_event_is_settled_on_its_own_day_values_with_the_event(tmp_path):
    from simulations.nightly import NightlyOptions, prepare_night
    from simulations.scenarios import Scenario, run_scenario
    from tests.nightly_fixtures import write_small_portfolio

    config = write_small_portfolio(tmp_path)
    night = prepare_night(config, D(2026, 4, 15), options=NightlyOptions(inputs="profiles"))
    result = run_scenario(night.ctx, Scenario(id="event-evening-down", kind="event", event_index=0))
    customer = result["baseline"]["customers"]["hall"]
    days = [D.fromisoformat(d) for d in customer["like_days"]]
    unadjusted = np.mean([night.ctx.history_kw[d]["hall"] for d in days], axis=0)
    net = np.asarray(result["series_kw"]["net_import"])
    window = slice(26, 32)  # 13:00-16:00 before the 17:00 event
    raw = float(np.mean(net[window]) - np.mean(unadjusted[window]))
    assert customer["raw_adjustment_kw"] == pytest.approx(raw, abs=2e-3)
    cap = 0.2 * abs(float(np.mean(unadjusted[34:38])))
    assert np.asarray(result["series_kw"]["baseline"]) == pytest.approx(unadjusted + np.clip(raw, -cap, cap), abs=2e-3)
    baseline = np.asarray(result["series_kw"]["baseline"])
    assert result["vs_baseline"]["delivered_kwh"] == pytest.approx(
        float(np.sum(baseline[34:38] - net[34:38]) * 0.5), abs=5e-3
    )


def test_history_without_the_event_sites_meter_stops_the_night_naming_the_site(tmp_path):
    from simulations.nightly import NightlyOptions, prepare_night
    from tests.nightly_fixtures import write_small_portfolio

    config = write_small_portfolio(tmp_path)
    index = pd.date_range("2026-03-20", "2026-04-15", freq="30min", tz="Asia/Tokyo", inclusive="left")
    path = tmp_path / "meters.csv"
    pd.DataFrame({"time": [t.isoformat() for t in index], "value": 5.0, "site": "depot"}).to_csv(path, index=False)
    with pytest.raises(HistoryError, match="event evening-down, site hall: fewer than 5 like days"):
        prepare_night(config, D(2026, 4, 15), history_csv=path, options=NightlyOptions(inputs="profiles"))
