"""Argument types shared by the commands, and one-line argument errors."""

from __future__ import annotations

import argparse
import datetime as dt

import pandas as pd

MAX_HORIZON_HOURS = 168  # as planning.horizon_hours allows
# pandas keeps times as int64 nanoseconds (about 1677..2262); a plan and its horizon must fit.
FIRST_PLAN_DATE = (pd.Timestamp.min + pd.Timedelta(days=2)).date()
LAST_PLAN_DATE = (pd.Timestamp.max - pd.Timedelta(hours=MAX_HORIZON_HOURS + 48)).date()


def aware_datetime(text: str) -> dt.datetime:
    """An ISO 8601 time that carries its offset; a naive time is refused (times are tz-aware)."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone offset, e.g. 2026-04-15T06:00+09:00")
    return value


def plan_date(text: str) -> dt.date:
    """A calendar day, YYYY-MM-DD, inside the range a plan's times can be represented in."""
    try:
        value = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not FIRST_PLAN_DATE <= value <= LAST_PLAN_DATE:
        raise argparse.ArgumentTypeError(
            f"{text} is outside the days a plan can cover ({FIRST_PLAN_DATE} to {LAST_PLAN_DATE})"
        )
    return value


def horizon_hours(text: str) -> int:
    """Whole hours, 1 to 168."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of hours") from None
    if not 1 <= value <= MAX_HORIZON_HOURS:
        raise argparse.ArgumentTypeError(f"{value} is outside 1..{MAX_HORIZON_HOURS} hours")
    return value


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Argument errors print one line (the command, the flag and what is wrong) and exit 2,
    instead of argparse's usage block."""

    def error(message: str):
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error  # type: ignore[method-assign]
    return parser
