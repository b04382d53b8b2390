"""Tables of the market side (schema version 2): spot prices by date and the 30-minute balance
of the demand plan. Kept apart from ``sqlite.py`` so the migration that adds them is one entry."""

MARKET_SCHEMA = """
CREATE TABLE prices (
    area TEXT NOT NULL, date TEXT NOT NULL, slot INTEGER NOT NULL, price_yen_per_kwh REAL NOT NULL,
    source TEXT NOT NULL, imported_ms INTEGER NOT NULL, PRIMARY KEY (area, date, slot));
CREATE TABLE slot_balance (
    slot_start_ms INTEGER NOT NULL, site TEXT NOT NULL, planned_kwh REAL NOT NULL, metered_kwh REAL NOT NULL,
    imbalance_kwh REAL NOT NULL, imbalance_yen REAL NOT NULL, following INTEGER NOT NULL,
    PRIMARY KEY (slot_start_ms, site));
"""

MARKET_TABLES = ("prices", "slot_balance")
