"""Shared helpers of the forecasting tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def weekly_shape(index: pd.DatetimeIndex) -> np.ndarray:
    """Same weekday shape Monday to Friday, a different Saturday and Sunday."""
    slot = (index.hour * 2 + index.minute // 30).to_numpy()
    base = 50 + 40 * np.sin(np.pi * slot / 48) ** 2
    weekday = index.day_of_week.to_numpy()
    return np.where(weekday == 5, 0.7 * base, np.where(weekday == 6, 0.4 * base + 5, base))
