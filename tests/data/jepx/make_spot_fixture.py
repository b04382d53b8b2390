"""Write ``spot_summary_derived_2026.csv``: a SYNTHETIC price file in JEPX's spot-summary format.

No real JEPX history is available to this project offline, so the tests and benchmarks use this
file. It is not JEPX data. It is made by the formula below, shaped after the published pattern
of Kyushu spring prices (low nights, a morning rise, a midday drop towards 0.01 yen/kWh when
solar output is high, an evening peak, lower weekends and holidays), with a hidden daily cloud
cover and seeded noise so that a forecaster cannot see everything:

    level[d]   = 11 + AR(1) walk (rho 0.9, sd 0.8) - 1.5 on Saturdays - 2.5 on Sundays/holidays
    shape[s]   = night 0.8, 07:00-09:00 1.15, 17:00-20:30 1.55, else 1.0
    solar[d,s] = clear-sky kW/kWp at Arao (32.99 N, 130.43 E) x cloud[d], cloud ~ U(0.15, 1.0)
    kyushu     = max(0.01, level * shape * (1 - 1.45 * solar) + AR(1) noise (sd 0.7))
    system     = 0.6 * kyushu + 0.4 * (level * shape) + 1.0; other areas: system + fixed offsets

Run ``python tests/data/jepx/make_spot_fixture.py`` to regenerate it (seed 20260415).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import holidays
import numpy as np
import pandas as pd

from forecasting.pv_model import PvSystem, clearsky_pv_kw

FIRST, DAYS, SEED = dt.date(2026, 2, 19), 56, 20260415
AREAS = ("北海道", "東北", "東京", "中部", "北陸", "関西", "中国", "四国", "九州")
OFFSETS = (2.0, 1.2, 1.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.0)
HEADER = [
    "受渡日",
    "時刻コード",
    "売り入札量(kWh)",
    "買い入札量(kWh)",
    "約定総量(kWh)",
    "システムプライス(円/kWh)",
    *(f"エリアプライス{a}(円/kWh)" for a in AREAS),
]
NOTE = [
    "# SYNTHETIC test fixture in the JEPX spot_summary format: NOT real JEPX prices.",
    "# Made by tests/data/jepx/make_spot_fixture.py (seed 20260415) from a documented formula shaped after",
    "# Kyushu spring prices (see that script). Dates 2026/02/19-2026/04/15.",
]


def main() -> None:
    rng = np.random.default_rng(SEED)
    index = pd.date_range(pd.Timestamp(FIRST).tz_localize("Asia/Tokyo"), periods=DAYS * 48, freq="30min")
    clear = clearsky_pv_kw(PvSystem(32.99, 130.43, 20.0, 180.0, 1.0), index).to_numpy().reshape(DAYS, 48)
    off = holidays.country_holidays("JP", years=[2026])
    slot = np.arange(48)
    shape = np.where(slot < 14, 0.8, np.where(slot < 18, 1.15, np.where((slot >= 34) & (slot < 41), 1.55, 1.0)))
    walk, noise, rows = 0.0, 0.0, []
    for d in range(DAYS):
        day = FIRST + dt.timedelta(days=d)
        walk = 0.9 * walk + rng.normal(0, 0.8)
        level = 11 + walk - (1.5 if day.weekday() == 5 else 0) - (2.5 if day.weekday() == 6 or day in off else 0)
        cloud = rng.uniform(0.15, 1.0)
        for s in range(48):
            noise = 0.7 * noise + rng.normal(0, 0.7 * np.sqrt(1 - 0.49))
            base = level * shape[s]
            kyushu = max(0.01, base * (1 - 1.45 * clear[d, s] * cloud) + noise)
            system = 0.6 * kyushu + 0.4 * base + 1.0
            sell, buy = rng.integers(25_000_000, 40_000_000), rng.integers(20_000_000, 35_000_000)
            rows.append(
                [
                    f"{day:%Y/%m/%d}",
                    str(s + 1),
                    str(sell),
                    str(buy),
                    str(min(sell, buy) - rng.integers(0, 2_000_000)),
                    f"{system:.2f}",
                    *(f"{max(0.01, system + o) if a != '九州' else kyushu:.2f}" for a, o in zip(AREAS, OFFSETS)),
                ]
            )
    text = "\r\n".join(NOTE + [",".join(HEADER)] + [",".join(r) for r in rows]) + "\r\n"
    Path(__file__).with_name("spot_summary_derived_2026.csv").write_bytes(text.encode("cp932"))


if __name__ == "__main__":
    main()
