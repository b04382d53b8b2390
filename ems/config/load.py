"""Load a portfolio file: parse TOML, validate the schema, check cross-references.

Everything that can be wrong with a file is found here, before anything runs, and reported as
one :class:`ConfigError` naming the file, the key path and the problem.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import BaseModel, ValidationError

from ems.config.dispatch import energy_threshold_problems
from ems.config.schema import SLOTS_PER_DAY, Portfolio, Profile


class ConfigError(ValueError):
    """A portfolio file is wrong. The message names the file, the key path and the problem."""

    def __init__(self, path: Path | str, problems: Iterable[tuple[str, str]]):
        self.path = str(path)
        self.problems = list(problems)
        lines = [f"{self.path}: {key}: {what}" for key, what in self.problems]
        if len(lines) == 1:  # the common case reads as one line
            super().__init__(f"invalid portfolio file: {lines[0]}")
        else:
            super().__init__("invalid portfolio file\n" + "\n".join(lines))


def load_portfolio(path: str | Path) -> Portfolio:
    """Read, validate and cross-check ``path``; raise :class:`ConfigError` on any problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, [("(file)", "no such file")]) from None
    except IsADirectoryError:
        raise ConfigError(path, [("(file)", "is a directory, not a portfolio file")]) from None
    except UnicodeDecodeError as error:
        what = f"not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start})"
        raise ConfigError(path, [("(file)", what)]) from None
    except OSError as error:
        raise ConfigError(path, [("(file)", error.strerror or str(error))]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, [("(syntax)", str(error))]) from None
    return parse_portfolio(raw, path)


def parse_portfolio(raw: dict[str, Any], path: str | Path = "<memory>") -> Portfolio:
    """Validate an already-parsed mapping (``path`` is used in messages and for relative CSVs)."""
    not_finite = list(_non_finite_numbers(raw))
    if not_finite:
        raise ConfigError(path, not_finite)
    try:
        portfolio = Portfolio.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(path, [(_key_path(raw, e["loc"]), e["msg"]) for e in error.errors()]) from None
    problems = list(_quoted_numbers(raw, portfolio))
    problems += list(_cross_reference_problems(portfolio, Path(path)))
    portfolio, tls_problems = _resolve_tls_files(portfolio, Path(path).parent)
    problems += tls_problems
    if problems:
        raise ConfigError(path, problems)
    return portfolio


def _resolve_tls_files(p: Portfolio, base: Path) -> tuple[Portfolio, list[tuple[str, str]]]:
    """Modbus TLS certificate paths made absolute (relative to the portfolio file), each checked."""
    problems: list[tuple[str, str]] = []

    def resolved(files, key: str):
        absolute = {}
        for name, value in files.model_dump().items():
            file = Path(value) if Path(value).is_absolute() else base / value
            if not file.is_file():
                problems.append((f"{key}.{name}", f"no such file: {file}"))
            absolute[name] = str(file)
        return files.model_copy(update=absolute)

    updates: dict[str, Any] = {}
    if p.twin.modbus_tls is not None:
        updates["twin"] = p.twin.model_copy(update={"modbus_tls": resolved(p.twin.modbus_tls, "twin.modbus_tls")})
    for table in ("grid_connections", "pv_arrays", "loads", "batteries", "shelters"):
        group = getattr(p, table)
        if any(a.driver.kind == "modbus" and a.driver.tls is not None for a in group):
            updates[table] = tuple(
                a.model_copy(
                    update={
                        "driver": a.driver.model_copy(
                            update={"tls": resolved(a.driver.tls, f"{table}[id={a.id}].driver.tls")}
                        )
                    }
                )
                if a.driver.kind == "modbus" and a.driver.tls is not None
                else a
                for a in group
            )
    return (p.model_copy(update=updates) if updates else p), problems


def _key_path(raw: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """``('batteries', 0, 'capacity_kwh')`` -> ``batteries[id=bess-1].capacity_kwh``."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            entry = node[item] if isinstance(node, list) and item < len(node) else None
            label = f"id={entry['id']}" if isinstance(entry, dict) and "id" in entry else str(item)
            parts[-1] = f"{parts[-1]}[{label}]" if parts else f"[{label}]"
            node = entry
        else:
            # pydantic names the union member it tried ("modbus", "function-after[...]"); skip those
            if (
                isinstance(node, dict)
                and item not in node
                and parts
                and str(item) in {"sim", "modbus", "mqtt", "ocpp", "echonet"}
            ):
                continue
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top)"


def _walk(raw: Any, parsed: Any, key: str = "") -> Iterable[tuple[str, Any, Any]]:
    """(key path, raw value, validated value) of every leaf of ``raw``; ``parsed`` is the model
    (or None where the model has no counterpart)."""
    if isinstance(raw, dict):
        for name, value in raw.items():
            child = parsed.get(name) if isinstance(parsed, dict) else _field_value(parsed, name)
            yield from _walk(value, child, f"{key}.{name}" if key else str(name))
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            child = parsed[i] if isinstance(parsed, (list, tuple)) and i < len(parsed) else None
            label = f"id={value['id']}" if isinstance(value, dict) and "id" in value else str(i)
            yield from _walk(value, child, f"{key}[{label}]")
    else:
        yield key, raw, parsed


def _field_value(model: Any, name: str) -> Any:
    if not isinstance(model, BaseModel):
        return None
    for field_name, info in type(model).model_fields.items():
        if name in (field_name, info.alias):
            return getattr(model, field_name)
    return None


def _non_finite_numbers(raw: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """TOML allows ``inf`` and ``nan``; no limit, price or rating of a portfolio may be either."""
    for key, value, _parsed in _walk(raw, None):
        if isinstance(value, float) and not math.isfinite(value):
            yield key, f"{value} is not a finite number"


def _quoted_numbers(raw: dict[str, Any], portfolio: Portfolio) -> Iterable[tuple[str, str]]:
    """A number the schema accepted from a quoted string or a boolean ("120", true): pydantic
    converts them, but a quoted number in a portfolio file is a typo more often than not."""
    for key, value, parsed in _walk(raw, portfolio):
        if isinstance(value, (str, bool)) and isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            yield key, f"expected a number, got {value!r}; write it without quotes"


def _duplicates(values: Iterable[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


def _cross_reference_problems(p: Portfolio, path: Path) -> Iterable[tuple[str, str]]:
    yield from energy_threshold_problems(p.dispatch, p.vehicles)
    try:
        ZoneInfo(p.portfolio.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        yield "portfolio.timezone", f"unknown time zone {p.portfolio.timezone!r}"

    site_ids = [s.id for s in p.sites]
    for dup in _duplicates(site_ids):
        yield f"sites[id={dup}]", "duplicate site id"
    # every table of things at a site (assets of any kind, shelters), in the order of the schema
    assets: dict[str, tuple[Any, ...]] = {
        name: group
        for name in Portfolio.model_fields
        if isinstance(group := getattr(p, name), tuple)
        and group
        and hasattr(group[0], "site")
        and hasattr(group[0], "id")
    }
    all_ids = [a.id for group in assets.values() for a in group] + [v.id for v in p.vehicles]
    for dup in _duplicates(all_ids):
        yield f"(ids) {dup}", "the same id is used by more than one asset or vehicle"
    for table, group in assets.items():
        for asset in group:
            if asset.site not in site_ids:
                yield f"{table}[id={asset.id}].site", f"{asset.site!r} is not a site id (known: {', '.join(site_ids)})"

    grid_sites = [g.site for g in p.grid_connections]
    for site in p.sites:
        if grid_sites.count(site.id) != 1:
            yield f"sites[id={site.id}]", f"needs exactly one grid connection, has {grid_sites.count(site.id)}"
        if site.tariff not in p.tariffs:
            yield f"sites[id={site.id}].tariff", f"{site.tariff!r} is not in [tariffs] (known: {', '.join(p.tariffs)})"
    if p.portfolio.depot_site is not None and p.portfolio.depot_site not in site_ids:
        yield "portfolio.depot_site", f"{p.portfolio.depot_site!r} is not a site id"

    known_profiles = set(p.profiles)
    for table, group in (("pv_arrays", p.pv_arrays), ("loads", p.loads), ("shelters", p.shelters)):
        for asset in group:
            if asset.profile not in known_profiles:
                yield f"{table}[id={asset.id}].profile", f"{asset.profile!r} is not in [profiles]"
    for name, profile in p.profiles.items():
        if profile.csv is not None:
            csv_path = (path.parent / profile.csv) if not Path(profile.csv).is_absolute() else Path(profile.csv)
            if not csv_path.is_file():
                yield f"profiles.{name}.csv", f"no such file: {csv_path}"

    chargers = {c.id: c for c in p.chargers}
    homes = [v.home_charger for v in p.vehicles if v.home_charger is not None]
    for dup in _duplicates(homes):
        yield f"vehicles (home_charger={dup})", "two vehicles share one home charger"
    for v in p.vehicles:
        key = f"vehicles[id={v.id}]"
        if v.home_charger is not None and v.home_charger not in chargers:
            yield f"{key}.home_charger", f"{v.home_charger!r} is not a charger id"
        if v.duties and v.home_charger is None:
            yield f"{key}.duties", "duties need a home_charger to plug into between them"
        if v.soc_min_fraction >= v.soc_max_fraction:
            yield f"{key}.soc_min_fraction", "must be below soc_max_fraction"
        for i, duty in enumerate(v.duties):
            need_kwh = duty.distance_km * v.consumption_kwh_per_km + v.reserve_kwh
            usable_kwh = v.battery_kwh * (v.soc_max_fraction - v.soc_min_fraction)
            if need_kwh > usable_kwh:
                yield (
                    f"{key}.duties[{i}].distance_km",
                    f"needs {need_kwh:.1f} kWh with reserve, more than the usable {usable_kwh:.1f} kWh",
                )
            if duty.depart == duty.return_:
                yield f"{key}.duties[{i}]", "depart and return are the same time"
        yield from _overlapping_duties(v, key)

    for s in p.shelters:
        for point in s.v2h_points:
            charger = chargers.get(point)
            if charger is None:
                yield f"shelters[id={s.id}].v2h_points", f"{point!r} is not a charger id"
            elif not (charger.v2h and charger.bidirectional):
                yield (
                    f"shelters[id={s.id}].v2h_points",
                    f"charger {point!r} is not V2H-capable (v2h and discharge_power_kw > 0)",
                )
            elif charger.site != s.site:
                yield (
                    f"shelters[id={s.id}].v2h_points",
                    f"charger {point!r} is at site {charger.site!r}, not {s.site!r}",
                )

    for name, regmap in p.register_maps.items():
        for dup in _duplicates([str(r.address) for r in regmap.values()]):
            yield f"register_maps.{name}", f"address {dup} is used twice"
    for table, group in list(assets.items()) + [("vehicles", p.vehicles)]:
        for asset in group:
            drv = asset.driver
            if drv.kind == "modbus" and drv.register_map != "sunspec" and drv.register_map not in p.register_maps:
                yield f"{table}[id={asset.id}].driver.register_map", f"{drv.register_map!r} is not in [register_maps]"
            if drv.kind == "ocpp" and table != "chargers":
                yield f"{table}[id={asset.id}].driver.kind", "'ocpp' is for chargers only"
            if drv.kind == "echonet" and table == "vehicles":
                yield f"{table}[id={asset.id}].driver.kind", "a vehicle is not an ECHONET Lite device (its charger is)"
    ocpp_points = [f"{c.driver.charge_point_id}#{c.driver.connector}" for c in p.chargers if c.driver.kind == "ocpp"]
    for dup in _duplicates(ocpp_points):
        yield "chargers.driver", f"charge point and connector {dup!r} named by two chargers"
    if p.ocpp.security_profile > 0 and not p.ocpp.credentials_file:
        yield (
            "ocpp.credentials_file",
            f"security_profile {p.ocpp.security_profile} needs a credentials file of charge point passwords",
        )
    if p.ocpp.security_profile == 2 and not (p.ocpp.cert_file and p.ocpp.key_file):
        yield "ocpp", "security_profile 2 needs cert_file and key_file (TLS)"


def _overlapping_duties(v, key: str) -> Iterable[tuple[str, str]]:
    def minutes(t) -> int:
        return t.hour * 60 + t.minute

    spans = []
    for duty in v.duties:
        start, end = minutes(duty.depart), minutes(duty.return_)
        if end <= start:
            end += 24 * 60
        spans.append((start, end))
    spans.sort()
    for (_s1, e1), (s2, _e2) in zip(spans, spans[1:]):
        if s2 < e1:
            yield f"{key}.duties", "duties overlap in time"
    if spans and spans[-1][1] - 24 * 60 > spans[0][0]:
        yield f"{key}.duties", "a duty past midnight overlaps the first duty of the next day"


def profile_values(profile: Profile, config_path: str | Path) -> tuple[float, ...]:
    """The 48 half-hourly values of a profile; a CSV (time,value) is averaged by slot of day."""
    if profile.values is not None:
        return profile.values
    csv_path = Path(config_path).parent / profile.csv  # type: ignore[operator]
    frame = pd.read_csv(csv_path)
    if list(frame.columns[:2]) != ["time", "value"]:
        raise ConfigError(csv_path, [("(columns)", f"expected 'time,value', got {','.join(frame.columns)}")])
    times = pd.to_datetime(frame["time"], utc=False)
    slot = times.dt.hour * 2 + times.dt.minute // 30
    by_slot = frame["value"].groupby(slot.to_numpy()).mean()
    if len(by_slot) != SLOTS_PER_DAY:
        raise ConfigError(csv_path, [("(rows)", f"covers {len(by_slot)} of {SLOTS_PER_DAY} half-hour slots")])
    return tuple(float(x) for x in by_slot.sort_index())
