"""The small portfolio with a [market] section, the synthetic JEPX fixture, and JEPX-format
bytes built in the test (Shift-JIS, real column names)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.nightly_fixtures import write_small_portfolio

SPOT_FIXTURE = Path("tests/data/jepx/spot_summary_derived_2026.csv")  # synthetic, see its header
FIXTURE_LAST = dt.date(2026, 4, 15)

AREA_COLUMNS = [
    f"エリアプライス{a}(円/kWh)" for a in ("北海道", "東北", "東京", "中部", "北陸", "関西", "中国", "四国", "九州")
]
REAL_HEADER = [
    "受渡日",
    "時刻コード",
    "売り入札量(kWh)",
    "買い入札量(kWh)",
    "約定総量(kWh)",
    "システムプライス(円/kWh)",
    *AREA_COLUMNS,
]
# columns later fiscal years append after the area prices
LATER_COLUMNS = [
    "スポット・時間前平均価格(円/kWh)",
    "α上限値×スポット・時間前平均価格(円/kWh)",  # noqa: RUF001 - JEPX's own headers
    "α下限値×スポット・時間前平均価格(円/kWh)",  # noqa: RUF001
]

MARKET_SECTION = """
[market]
area = "kyushu"
wheeling_yen_per_kwh = 5.0
fees_yen_per_kwh = 0.5
renewable_surcharge_yen_per_kwh = 3.5
imbalance_price_yen_per_kwh = 25.0
"""


def write_market_portfolio(directory: Path, extra: str = "") -> Path:
    config = write_small_portfolio(directory)
    store = (directory / "ems.sqlite").as_posix()
    config.write_text(config.read_text() + MARKET_SECTION + f'\n[storage]\nsqlite_path = "{store}"\n' + extra)
    return config


def spot_bytes(
    days: dict[dt.date, list[float]],
    header: list[str] | None = None,
    kyushu_column: str = AREA_COLUMNS[-1],
    extra: list[str] = (),
    encoding: str = "cp932",
) -> bytes:
    """A file in JEPX's layout: every real column (volumes and other areas filled), Kyushu's
    price from ``days``, the system price 1 yen above, any ``extra`` columns after."""
    header = list(header or REAL_HEADER) + list(extra)
    lines = [",".join(header)]
    for day, prices in days.items():
        for code, price in enumerate(prices, start=1):
            values = {name: "0" for name in header}
            values |= {
                "受渡日": f"{day:%Y/%m/%d}",
                "時刻コード": str(code),
                "売り入札量(kWh)": "31234500",
                "買い入札量(kWh)": "29876500",
                "約定総量(kWh)": "28765400",
                "システムプライス(円/kWh)": f"{price + 1:.2f}",
                kyushu_column: f"{price:.2f}",
            }
            lines.append(",".join(values[name] for name in header))
    return ("\r\n".join(lines) + "\r\n").encode(encoding)
