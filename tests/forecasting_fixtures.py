"""Shared helpers of the forecasting tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ems.config import load_portfolio

ROOT = Path(__file__).resolve().parents[1]
ARAO = ROOT / "config" / "arao.toml"
TOKYO = "Asia/Tokyo"


def arao():
    return load_portfolio(ARAO)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def half_hours(start: str, days: int, tz: str = TOKYO) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start, tz=tz), periods=days * 48, freq="30min")
