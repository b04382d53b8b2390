"""Write the reference of the portfolio format (docs/config.md) from the schema itself, so the
documentation cannot drift from the code: ``python -m ems.config.doc > docs/config.md``."""

from __future__ import annotations

import datetime as dt
import sys
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from ems.config import schema
from ems.config.bcp import BcpSettings
from ems.config.console import ConsoleSettings
from ems.config.control import ControlSettings, InfluxSettings, StorageSettings
from ems.config.dispatch import DispatchSettings
from ems.config.drivers import (
    EchonetDriver,
    EchonetNetwork,
    ModbusTlsFiles,
    OcppDriver,
    OcppServer,
    TwinModbusTls,
    TwinSettings,
)
from ems.config.forecasting import ForecastingSettings
from ems.config.market import MarketSettings, OpenAdrSettings

UNITS = {
    "_kw": "kW",
    "_kwh": "kWh",
    "_kwp": "kWp",
    "_yen_per_kwh": "yen/kWh",
    "_yen_per_kg": "yen/kg",
    "_yen_per_kw_month": "yen/kW/month",
    "_kg_per_kwh": "kg-CO2/kWh",
    "_kwh_per_km": "kWh/km",
    "_km": "km",
    "_deg": "degree",
    "_s": "s",
    "_fraction": "fraction of capacity",
    "_minutes": "min",
    "_hours": "h",
    "_efficiency": "fraction",
    "efficiency": "fraction",
}

SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("[portfolio]", schema.PortfolioInfo, "The portfolio as a whole."),
    ("[planning]", schema.Planning, "How plans are made."),
    ("[mqtt]", schema.MqttBroker, "The broker devices and the fleet use. Credentials never go in the TOML."),
    (
        "[ocpp]",
        OcppServer,
        'The OCPP central system the controller runs for chargers with `kind = "ocpp"` (see docs/drivers.md).',
    ),
    ("[echonet]", EchonetNetwork, "The controller's ECHONET Lite socket (see docs/drivers.md)."),
    ("[control]", ControlSettings, "The live control loop (`ems run`)."),
    ("[storage]", StorageSettings, "Where telemetry, plans, set-points and events are kept."),
    ("[storage.influx]", InfluxSettings, "Optional InfluxDB mirror of the time series."),
    ("[twin]", TwinSettings, 'Where the digital twin serves simulated (`kind = "sim"`) devices.'),
    (
        "[twin.modbus_tls]",
        TwinModbusTls,
        'Optional: the twin\'s Modbus devices speak Modbus/TCP Security (see docs/drivers.md, "Security").',
    ),
    ("[forecasting]", ForecastingSettings, "How PV and load are forecast for plans (see docs/forecasting.md)."),
    ("[dispatch]", DispatchSettings, "The ride-pooling dispatcher (see docs/dispatch.md)."),
    ("[bcp]", BcpSettings, "BCP planning: shelters in an outage (see docs/bcp.md)."),
    (
        "[market]",
        MarketSettings,
        "Optional: plan on JEPX prices by date and follow the 30-minute demand plan (see docs/market.md).",
    ),
    (
        "[openadr]",
        OpenAdrSettings,
        "Optional: the OpenADR 2.0b VEN (`ems dr ven`, and inside `ems run`; see docs/market.md).",
    ),
    ("[console]", ConsoleSettings, "The operators' console (`ems serve`, `ems run --http`; see docs/console.md)."),
    ("[[sites]]", schema.Site, "A place with its own bus and one grid connection."),
    ("[[grid_connections]]", schema.GridConnection, "One per site."),
    ("[[pv_arrays]]", schema.PvArray, ""),
    ("[[loads]]", schema.SiteLoad, ""),
    ("[[batteries]]", schema.Battery, "Stationary batteries."),
    ("[[chargers]]", schema.Charger, "EV chargers; bidirectional when `discharge_power_kw` > 0."),
    ("[[vehicles]]", schema.Vehicle, "EV taxis."),
    ("duties = [{...}]", schema.Duty, "A vehicle's daily shifts away from its home charger."),
    ("[[shelters]]", schema.Shelter, "Evacuation shelters (used by BCP planning)."),
    ("[tariffs.NAME]", schema.Tariff, "A site uses the tariff its `tariff` key names (default `default`)."),
    ("[profiles.NAME]", schema.Profile, "Daily shapes referred to by PV arrays, loads and shelters."),
    ('driver = {kind = "sim"}', schema.SimDriver, "Every asset's `driver` table; simulated by the digital twin."),
    ('driver = {kind = "modbus", ...}', schema.ModbusDriver, "A device on Modbus TCP."),
    (
        'driver = {kind = "modbus", ..., tls = {...}}',
        ModbusTlsFiles,
        "Modbus/TCP Security (TLS 1.2+, client certificate) for one device.",
    ),
    ('driver = {kind = "mqtt", ...}', schema.MqttDriver, "A device on MQTT."),
    ('driver = {kind = "ocpp", ...}', OcppDriver, "A charger connected to the controller's OCPP central system."),
    (
        'driver = {kind = "echonet", ...}',
        EchonetDriver,
        "A V2H unit, battery, PV conditioner or smart meter on ECHONET Lite.",
    ),
    ("[register_maps.NAME.POINT]", schema.RegisterSpec, "Vendor register maps for devices that are not SunSpec."),
]


def _unit(name: str) -> str:
    for suffix, unit in sorted(UNITS.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return unit
    return ""


def _type_name(annotation) -> str:
    text = getattr(annotation, "__name__", None) if typing.get_origin(annotation) is None else None
    text = text or str(annotation).replace("typing.", "").replace("ems.config.schema.", "")
    text = (
        text.replace("ems.config.drivers.", "")
        .replace("NoneType", "none")
        .replace("datetime.time", "time")
        .replace("pydantic.types.", "")
    )
    return text.replace(" | ", " or ").replace("|", " or ")


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    if field.default_factory is not None:
        return "(table)"
    if isinstance(field.default, dt.time):
        return f"`{field.default:%H:%M}`"
    return f"`{field.default!r}`" if field.default is not None else "none"


def model_table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | unit | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        lines.append(
            f"| `{key}` | {_type_name(field.annotation)} | {_unit(name)} | {_default(field)} "
            f"| {field.description or ''} |"
        )
    return lines


def asset_sections() -> list[tuple[str, type[BaseModel], str]]:
    """``SECTIONS`` with a section for every further table of assets in the portfolio (a new
    asset kind's config class documents itself: its docstring is the section's note)."""
    listed = {model for _title, model, _note in SECTIONS}
    further = []
    for name, field in schema.Portfolio.model_fields.items():
        args = typing.get_args(field.annotation)
        model = args[0] if typing.get_origin(field.annotation) is tuple and args else None
        if isinstance(model, type) and issubclass(model, schema.Asset) and model not in listed:
            further.append((f"[[{name}]]", model, " ".join((model.__doc__ or "").split())))
    at = next(i for i, (title, _m, _n) in enumerate(SECTIONS) if title.startswith("[tariffs"))
    return SECTIONS[:at] + further + SECTIONS[at:]


def render() -> str:
    out = [
        "# Portfolio file reference",
        "",
        "Generated from `ems/config/schema.py` by `python -m ems.config.doc`; a test keeps it current.",
        "One TOML file describes a portfolio; `config/arao.toml` is a complete example. Unknown keys are",
        "errors. Power is positive into a site's bus. Half-hourly series have 48 values, slot 0 at 00:00",
        "local time. Relative paths are relative to the TOML file.",
        "",
    ]
    for title, model, note in asset_sections():
        out += [f"## `{title}`", ""] + ([note, ""] if note else []) + model_table(model) + [""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
