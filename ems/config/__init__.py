"""Portfolio configuration: the typed schema and its loader (the ground floor)."""

from ems.config.load import ConfigError, load_portfolio, parse_portfolio, profile_values
from ems.config.schema import (
    Battery,
    Charger,
    GridConnection,
    Planning,
    Portfolio,
    PvArray,
    Shelter,
    Site,
    SiteLoad,
    Tariff,
    Vehicle,
)

__all__ = [
    "Battery",
    "Charger",
    "ConfigError",
    "GridConnection",
    "Planning",
    "Portfolio",
    "PvArray",
    "Shelter",
    "Site",
    "SiteLoad",
    "Tariff",
    "Vehicle",
    "load_portfolio",
    "parse_portfolio",
    "profile_values",
]
