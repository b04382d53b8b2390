"""Argument types shared by the commands."""

from __future__ import annotations

import argparse
import datetime as dt


def aware_datetime(text: str) -> dt.datetime:
    """An ISO 8601 time that carries its offset; a naive time is refused (times are tz-aware)."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone offset, e.g. 2026-04-15T06:00+09:00")
    return value
