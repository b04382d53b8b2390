"""The JEPX spot file reader on the real layout (Shift-JIS, columns by name), its errors, the
price store and its migration, and ``ems prices import``."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from ems.cli import main
from ems.market.jepx import JepxFormatError, read_spot_csv
from ems.store import SCHEMA_VERSION, Store
from ems.store.prices import price_coverage, prices_between
from tests.market_fixtures import (
    AREA_COLUMNS,
    FIXTURE_LAST,
    LATER_COLUMNS,
    REAL_HEADER,
    SPOT_FIXTURE,
    spot_bytes,
    write_market_portfolio,
)

DAY = dt.date(2026, 4, 15)
PRICES = [round(8 + 0.25 * k, 2) for k in range(48)]


def test_real_layout_in_shift_jis_reads_the_area_price_by_name(tmp_path):
    path = tmp_path / "spot_summary_2026.csv"
    path.write_bytes(spot_bytes({DAY: PRICES, DAY + dt.timedelta(days=1): PRICES[::-1]}))
    assert path.read_bytes().decode("cp932").startswith("受渡日,時刻コード,売り入札量(kWh)")
    kyushu = read_spot_csv(path, "kyushu")
    assert kyushu.days[DAY] == tuple(PRICES)
    assert kyushu.days[DAY + dt.timedelta(days=1)][0] == PRICES[-1]
    system = read_spot_csv(path, "system")
    assert system.days[DAY][10] == pytest.approx(PRICES[10] + 1)
    assert read_spot_csv(path, "tokyo").days[DAY][0] == 0.0  # another area's column, not Kyushu's


def test_later_years_extra_columns_and_reordered_columns(tmp_path):
    extra = tmp_path / "spot_summary_2027.csv"
    extra.write_bytes(spot_bytes({DAY: PRICES}, extra=LATER_COLUMNS))
    assert read_spot_csv(extra).days[DAY] == tuple(PRICES)
    reordered_header = [REAL_HEADER[1], AREA_COLUMNS[-1], *REAL_HEADER[2:-1], REAL_HEADER[0]]
    reordered = tmp_path / "reordered.csv"
    reordered.write_bytes(spot_bytes({DAY: PRICES}, header=reordered_header))
    assert read_spot_csv(reordered).days[DAY] == tuple(PRICES)


@pytest.mark.parametrize(
    "mutate, line, column, words",
    [
        (lambda t: t.replace(",13.00\r\n", ",abc\r\n", 1), 22, "エリアプライス九州(円/kWh)", "not a price"),
        (lambda t: t.replace("2026/04/15,3,", "2026-04-15,3,", 1), 4, "受渡日", "not a date"),
        (lambda t: t.replace("2026/04/15,48,", "2026/04/15,49,", 1), 49, "時刻コード", "slot code 1-48"),
        (lambda t: t.replace("2026/04/15,48,", "2026/04/15,47,", 1), 49, "時刻コード", "appears twice"),
        (
            lambda t: t.replace("エリアプライス九州", "エリアプライス九洲", 1),
            1,
            "エリアプライス九州(円/kWh)",
            "column missing",
        ),
    ],
)
def test_a_bad_file_names_file_line_and_column(tmp_path, mutate, line, column, words):
    path = tmp_path / "bad.csv"
    path.write_bytes(mutate(spot_bytes({DAY: PRICES}).decode("cp932")).encode("cp932"))
    with pytest.raises(JepxFormatError) as caught:
        read_spot_csv(path)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert words in str(caught.value) and str(path) in str(caught.value)


def test_a_day_missing_slots_and_bytes_that_are_not_shift_jis(tmp_path):
    short = tmp_path / "short.csv"
    short.write_bytes(spot_bytes({DAY: PRICES[:40]}))
    with pytest.raises(JepxFormatError, match="lacks slot codes 41-48"):
        read_spot_csv(short)
    broken = tmp_path / "broken.csv"
    broken.write_bytes(spot_bytes({DAY: PRICES})[:-40] + b"\x81\xff,1\r\n")
    with pytest.raises(JepxFormatError, match="line 49: not cp932"):
        read_spot_csv(broken)


def test_the_derived_fixture_says_it_is_synthetic_and_reads(tmp_path):
    head = SPOT_FIXTURE.read_bytes().decode("cp932").splitlines()[0]
    assert "SYNTHETIC" in head and "NOT real JEPX" in head
    spot = read_spot_csv(SPOT_FIXTURE, "kyushu")
    assert spot.last == FIXTURE_LAST and len(spot.days) == 56
    assert min(min(p) for p in spot.days.values()) == pytest.approx(0.01)


def test_import_stores_dates_and_a_reimport_replaces_only_its_dates(tmp_path, capsys):
    config = write_market_portfolio(tmp_path / "site")
    first = tmp_path / "a.csv"
    first.write_bytes(spot_bytes({DAY: PRICES, DAY + dt.timedelta(days=1): PRICES}))
    assert main(["prices", "import", "--config", str(config), str(first)]) == 0
    assert "imported 2 dates of kyushu prices" in capsys.readouterr().out
    second = tmp_path / "b.csv"
    second.write_bytes(spot_bytes({DAY + dt.timedelta(days=1): [p + 2 for p in PRICES]}))
    assert main(["prices", "import", "--config", str(config), str(second)]) == 0
    store = Store(tmp_path / "site" / "ems.sqlite")
    stored = prices_between(store, "kyushu", DAY, DAY + dt.timedelta(days=1))
    assert stored[DAY] == tuple(PRICES)
    assert stored[DAY + dt.timedelta(days=1)][0] == PRICES[0] + 2
    assert price_coverage(store) == [("kyushu", DAY, DAY + dt.timedelta(days=1), 2)]


def test_import_of_a_bad_file_exits_2_with_one_line_and_stores_nothing(tmp_path, capsys):
    config = write_market_portfolio(tmp_path / "site")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(spot_bytes({DAY: PRICES}).decode("cp932").replace(",10.00\r\n", ",n/a\r\n").encode("cp932"))
    assert main(["prices", "import", "--config", str(config), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.csv: line 10: column エリアプライス九州(円/kWh)" in err
    assert price_coverage(Store(tmp_path / "site" / "ems.sqlite")) == []


def test_a_version_1_store_is_migrated_in_place_keeping_its_rows(tmp_path):
    from ems.store.market_schema import MARKET_SCHEMA
    from ems.store.sqlite import SCHEMA

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA.replace(MARKET_SCHEMA, ""))
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute("INSERT INTO events VALUES (1, 'start', 'kept', '{}')")
    db.commit()
    db.close()
    store = Store(path)
    assert store.count("events") == 1 and store.count("prices") == 0
    store.close()
    version = sqlite3.connect(path).execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert int(version) == SCHEMA_VERSION == 2
