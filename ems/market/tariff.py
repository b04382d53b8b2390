"""The retailer's price per kWh from the spot price and its own terms (``[market]``).

import_yen_per_kwh[d, s] = spot[d, s] + wheeling + fees + renewable surcharge
export_yen_per_kwh[d, s] = max(0, spot[d, s] - export fee)      (export_at_spot)
                         = the tariff's export price            (otherwise)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from ems.config.market import MarketSettings
from ems.config.schema import Tariff


@dataclass(frozen=True)
class DayPrices:
    """Per local date, 48 import and 48 export prices [yen/kWh], and which dates were forecast."""

    import_yen_per_kwh: dict[dt.date, tuple[float, ...]]
    export_yen_per_kwh: dict[dt.date, tuple[float, ...]]
    forecast_dates: frozenset[dt.date] = field(default_factory=frozenset)
    spot_yen_per_kwh: dict[dt.date, tuple[float, ...]] = field(default_factory=dict)


def retail_prices(
    spot: Mapping[dt.date, tuple[float, ...]],
    settings: MarketSettings,
    tariff: Tariff,
    forecast_dates: frozenset[dt.date] = frozenset(),
) -> DayPrices:
    adder = settings.wheeling_yen_per_kwh + settings.fees_yen_per_kwh + settings.renewable_surcharge_yen_per_kwh
    imports = {d: tuple(p + adder for p in prices) for d, prices in spot.items()}
    if settings.export_at_spot:
        exports = {
            d: tuple(max(0.0, p - settings.export_fee_yen_per_kwh) for p in prices) for d, prices in spot.items()
        }
    else:
        exports = {d: tuple(tariff.export_price_yen_per_kwh) for d in spot}
    return DayPrices(imports, exports, frozenset(forecast_dates), dict(spot))
