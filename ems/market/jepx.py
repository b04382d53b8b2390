"""Read JEPX's spot-market summary (``spot_summary_YYYY.csv``): one row per delivery date and
30-minute slot, in Shift-JIS.

The published file starts with the columns ``受渡日,時刻コード,売り入札量(kWh),買い入札量(kWh),
約定総量(kWh),システムプライス(円/kWh),エリアプライス北海道(円/kWh),...,エリアプライス九州(円/kWh)``;
later fiscal years add columns after these, so columns are found by name, never by position.
Dates are written ``2026/04/15``; slot codes run 1-48 (code 1 is 00:00-00:30 local).

Lines before the header that start with ``#`` are skipped: the real file has none, a derived
test fixture uses them to say how it was made.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass
from pathlib import Path

DATE_COLUMN = "受渡日"
SLOT_COLUMN = "時刻コード"
SYSTEM_PRICE_COLUMN = "システムプライス(円/kWh)"
ENCODING = "cp932"  # Microsoft's Shift-JIS, what JEPX writes

AREA_NAMES = {
    "hokkaido": "北海道",
    "tohoku": "東北",
    "tokyo": "東京",
    "chubu": "中部",
    "hokuriku": "北陸",
    "kansai": "関西",
    "chugoku": "中国",
    "shikoku": "四国",
    "kyushu": "九州",
}
AREAS = ("system", *AREA_NAMES)
SLOTS_PER_DAY = 48


class JepxFormatError(ValueError):
    """A spot file cannot be read; names the file, the line (1-based, as an editor shows it)
    and the column."""

    def __init__(self, path: str | Path, line: int | None, column: str | None, problem: str):
        self.path, self.line, self.column, self.problem = str(path), line, column, problem
        where = "".join([f": line {line}" if line else "", f": column {column}" if column else ""])
        super().__init__(f"{path}{where}: {problem}")


@dataclass(frozen=True)
class SpotPrices:
    """The prices of one area from one file: per delivery date, 48 slot prices [yen/kWh]."""

    area: str
    source: str
    days: dict[dt.date, tuple[float, ...]]

    @property
    def first(self) -> dt.date:
        return min(self.days)

    @property
    def last(self) -> dt.date:
        return max(self.days)


def price_column(area: str) -> str:
    """The column header of an area's price (``system``: the system price)."""
    if area == "system":
        return SYSTEM_PRICE_COLUMN
    if area not in AREA_NAMES:
        raise ValueError(f"unknown JEPX area {area!r} (known: {', '.join(AREAS)})")
    return f"エリアプライス{AREA_NAMES[area]}(円/kWh)"


def _decode(path: Path, raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):  # a file re-saved as UTF-8 with a byte-order mark
        encoding, raw = "utf-8", raw[3:]
    else:
        encoding = ENCODING
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise JepxFormatError(
            path, line, None, f"not {encoding} text (byte 0x{raw[error.start]:02x}); JEPX files are Shift-JIS"
        ) from None


def read_spot_csv(path: str | Path, area: str = "kyushu") -> SpotPrices:
    """All delivery dates of ``area`` in the file; raises :class:`JepxFormatError` on any problem."""
    path = Path(path)
    column = price_column(area)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise JepxFormatError(path, None, None, error.strerror or str(error)) from None
    lines = _decode(path, raw).splitlines()
    skipped = 0
    while skipped < len(lines) and lines[skipped].lstrip().startswith("#"):
        skipped += 1
    rows = csv.reader(io.StringIO("\n".join(lines[skipped:])))
    header = next(rows, None)
    if header is None:
        raise JepxFormatError(path, None, None, "empty file")
    header = [name.strip() for name in header]
    positions = {}
    for wanted in (DATE_COLUMN, SLOT_COLUMN, column):
        if wanted not in header:
            raise JepxFormatError(path, skipped + 1, wanted, "column missing from the header")
        positions[wanted] = header.index(wanted)
    days: dict[dt.date, list[float | None]] = {}
    for number, row in enumerate(rows, start=skipped + 2):
        if not any(cell.strip() for cell in row):
            continue
        date, slot, price = (_cell(path, number, row, positions, name) for name in (DATE_COLUMN, SLOT_COLUMN, column))
        day = _date(path, number, date)
        code = _slot(path, number, slot)
        value = _price(path, number, column, price)
        prices = days.setdefault(day, [None] * SLOTS_PER_DAY)
        if prices[code - 1] is not None:
            raise JepxFormatError(path, number, SLOT_COLUMN, f"{day:%Y/%m/%d} slot {code} appears twice")
        prices[code - 1] = value
    if not days:
        raise JepxFormatError(path, None, None, "no data rows after the header")
    for day, prices in days.items():
        missing = [i + 1 for i, p in enumerate(prices) if p is None]
        if missing:
            raise JepxFormatError(path, None, SLOT_COLUMN, f"{day:%Y/%m/%d} lacks slot codes {_ranges(missing)}")
    return SpotPrices(area=area, source=path.name, days={d: tuple(p) for d, p in sorted(days.items())})  # type: ignore[arg-type]


def _cell(path: Path, line: int, row: list[str], positions: dict[str, int], name: str) -> str:
    position = positions[name]
    if position >= len(row):
        raise JepxFormatError(path, line, name, f"row has {len(row)} fields, the header {max(positions.values()) + 1}+")
    return row[position].strip()


def _date(path: Path, line: int, text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y/%m/%d").date()
    except ValueError:
        raise JepxFormatError(path, line, DATE_COLUMN, f"{text!r} is not a date like 2026/04/15") from None


def _slot(path: Path, line: int, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= SLOTS_PER_DAY:
        raise JepxFormatError(path, line, SLOT_COLUMN, f"{text!r} is not a slot code 1-{SLOTS_PER_DAY}")
    return int(text)


def _price(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        raise JepxFormatError(path, line, column, f"{text!r} is not a price in yen/kWh") from None
    if not math.isfinite(value) or value < 0 or value > 1000:  # JEPX prices are 0.01-200 yen/kWh
        raise JepxFormatError(path, line, column, f"{text!r} is outside 0-1000 yen/kWh")
    return value


def _ranges(codes: list[int]) -> str:
    out: list[str] = []
    start: int | None = codes[0]
    for previous, current in zip(codes, codes[1:] + [None]):
        if current != previous + 1:
            out.append(str(start) if start == previous else f"{start}-{previous}")
            start = current
    return ", ".join(out)


def slot_start(day: dt.date, code: int, timezone: str) -> dt.datetime:
    """Local start of slot ``code`` (1-48) of ``day``."""
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(day, dt.time(0), ZoneInfo(timezone)) + dt.timedelta(minutes=30 * (code - 1))
