"""An outage: which sites lose the grid, from when, for how long (docs/bcp.md, "Outage file").

Given either as a TOML file or as a one-line spec on the command line::

    start=2026-09-15T14:00+09:00; hours=72; sites=shelter_north,city_hall; pv_scale=0.3
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ems.config.schema import Portfolio


class OutageError(ValueError):
    """An outage file or spec is wrong; the message names the source and the key."""


class Outage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("outage", description="display name")
    start: dt.datetime = Field(description="when the grid is lost (ISO 8601 with an offset)")
    duration_hours: float = Field(gt=0, le=336, description="how long the listed sites stay without grid")
    sites: tuple[str, ...] = Field(min_length=1, description="ids of the sites that lose the grid")
    pv_scale: float = Field(
        1.0, ge=0, le=1, description="PV output during the outage as a share of the profile (cloud cover)"
    )

    @field_validator("start")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (ISO 8601 with an offset, e.g. 2026-09-15T14:00:00+09:00)")
        return value

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(hours=self.duration_hours)

    def check_against(self, portfolio: Portfolio, source: str) -> None:
        known = [s.id for s in portfolio.sites]
        unknown = [s for s in self.sites if s not in known]
        if unknown:
            raise OutageError(f"{source}: sites: {', '.join(unknown)} not in the portfolio (known: {', '.join(known)})")


def _fields_from_spec(spec: str) -> dict:
    fields: dict = {}
    for part in spec.replace("\n", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise OutageError(f"outage spec: {part!r} is not key=value")
        key, value = key.strip(), value.strip()
        key = {"hours": "duration_hours"}.get(key, key)
        fields[key] = [s.strip() for s in value.split(",") if s.strip()] if key == "sites" else value
    return fields


def load_outage(file_or_spec: str | Path) -> Outage:
    """Read an outage TOML file, or parse a ``key=value; ...`` spec when no such file exists."""
    path = Path(file_or_spec)
    if path.suffix == ".toml" or path.is_file():
        source = str(path)
        try:
            fields = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OutageError(f"{source}: no such file") from None
        except tomllib.TOMLDecodeError as error:
            raise OutageError(f"{source}: {error}") from None
    else:
        source = "outage spec"
        fields = _fields_from_spec(str(file_or_spec))
    try:
        return Outage.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in error.errors())
        raise OutageError(f"{source}: {problems}") from None
