"""The retailer's market settings: ``[market]`` (JEPX prices, tariff terms, imbalance) and
``[openadr]`` (the OpenADR 2.0b VEN). Documented in docs/config.md and docs/market.md.

Without ``[market]`` the plan prices energy with the fixed 48-value ``[tariffs]``; with it,
each date's JEPX area price from the store plus the terms below (a forecast where a date has
no published prices yet).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

JEPX_AREAS = ("system", "hokkaido", "tohoku", "tokyo", "chubu", "hokuriku", "kansai", "chugoku", "shikoku", "kyushu")


class MarketSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    area: Literal[JEPX_AREAS] = Field("kyushu", description="JEPX price area ('system' for the system price)")  # type: ignore[valid-type]
    wheeling_yen_per_kwh: float = Field(0.0, ge=0, description="network (wheeling) charge per kWh imported")
    fees_yen_per_kwh: float = Field(0.0, ge=0, description="the retailer's fees and margin per kWh imported")
    renewable_surcharge_yen_per_kwh: float = Field(0.0, ge=0, description="renewable energy surcharge per kWh imported")
    export_at_spot: bool = Field(
        True,
        description="exported energy earns the spot price less export_fee_yen_per_kwh; "
        "false: the tariff's export price",
    )
    export_fee_yen_per_kwh: float = Field(0.0, ge=0, description="deducted from the spot price for exported energy")
    imbalance_price_yen_per_kwh: float = Field(
        30.0, ge=0, description="price of each kWh the metered 30-minute energy differs from the demand plan"
    )
    follow_plan: bool = Field(
        True, description="ems run steers batteries and chargers so each slot's metered energy ends at the plan"
    )
    price_history_days: int = Field(56, ge=7, description="days of stored prices the price forecast learns from")


class OpenAdrSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vtn_url: str = Field(description="the VTN's OpenADR endpoint, e.g. http://127.0.0.1:8080/OpenADR2/Simple/2.0b")
    ven_name: str = Field(description="this VEN's name, as registered with the VTN")
    events_dir: str = Field("config/events", description="where received events are written as event files")
    sites: tuple[str, ...] = Field((), description="sites an event without a resource target applies to (default: all)")
    price_yen_per_kwh: float = Field(20.0, ge=0, description="paid per kWh delivered when the event carries no price")
    penalty_yen_per_kwh: float = Field(0.0, ge=0, description="charged per kWh short of an accepted request")
    opt_in_fraction: float = Field(
        1.0, gt=0, le=1, description="opt in when the flexibility reaches this share of the requested kW"
    )
    report_interval_s: float = Field(60.0, gt=0, description="telemetry report sampling interval offered to the VTN")
    cert_file: str | None = Field(None, description="client certificate (PEM) for signed messages; none: unsigned")
    key_file: str | None = Field(None, description="private key (PEM) of cert_file")
    vtn_fingerprint: str | None = Field(None, description="the VTN certificate's fingerprint to check")
