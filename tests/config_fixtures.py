"""The reference portfolio as raw TOML, and copies of it with one edit, for the config tests."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

REFERENCE = Path("config/arao.toml")
RAW = tomllib.loads(REFERENCE.read_text())


def broken(edit) -> dict:
    """A deep copy of the reference portfolio with `edit` applied to it."""
    raw = copy.deepcopy(RAW)
    edit(raw)
    return raw
