"""The ``ocpp`` charger driver: reads and writes one connector through the central system.

A reading comes from what the charge point last reported (no request on the wire): ``missing``
while it is not connected, ``stale`` when its last MeterValues is older than ``stale_after_s``.
Power is in the bus sign (charging the vehicle is negative). The plugged vehicle is the one
whose ID tag started the running transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from drivers.api import Ack, DeviceUnavailable, Quality, Reading, utc_now
from drivers.ocpp.csms import CentralSystem, ConnectorConfig, SetpointFailed
from drivers.registry import register

OUT_OF_RANGE_MARGIN = 1.2  # as the other drivers: beyond 120 % of the rating is not physical


class OcppSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    charge_point_id: str = Field(pattern=r"^[A-Za-z0-9_.\-:]+$")
    connector: int = Field(1, ge=1)
    bidirectional: bool = False
    rate_unit: Literal["W", "A"] = "W"
    phases: Literal[1, 3] = 3
    voltage_v: float = Field(200.0, gt=0)
    failsafe_kw: float = 0.0
    v2x: Literal["none", "vendor"] = Field(
        "none", description="1.6: 'vendor' speaks the DataTransfer discharge extension"
    )
    timeout_s: float = Field(5.0, gt=0)
    stale_after_s: float = Field(120.0, gt=0)
    rated_power_kw: float | None = Field(None, gt=0, description="a reading beyond 120 % of it is out of range")
    id_tags: dict[str, str] = Field(default_factory=dict, description="ID tag -> vehicle id")


@register("ocpp")
class OcppCharger:
    Settings = OcppSettings
    needs = frozenset({"csms"})
    writable = True

    @staticmethod
    def where(settings: Mapping[str, Any]) -> str:
        return f"ocpp:{settings['charge_point_id']}#{settings.get('connector', 1)}"

    def __init__(self, settings: OcppSettings, csms: CentralSystem):
        self.settings = settings
        self.name = settings.name
        self.csms = csms
        self.bidirectional = settings.bidirectional
        csms.expect(
            settings.charge_point_id,
            ConnectorConfig(
                settings.connector,
                settings.rate_unit,
                settings.phases,
                settings.voltage_v,
                settings.failsafe_kw,
                settings.v2x == "vendor",
            ),
        )

    async def connect(self) -> None:
        await self.csms.start()

    async def close(self) -> None:
        """The central system is shared and stopped by its owner."""

    async def read(self) -> Reading:
        s = self.settings
        session = self.csms.sessions.get(s.charge_point_id)
        if session is None or not session.connected:
            return Reading.missing(self.name, f"charge point {s.charge_point_id!r} not connected to the central system")
        state = session.connectors.get(s.connector)
        if state is None or not state.reported:
            return Reading.missing(
                self.name, f"charge point {s.charge_point_id!r} connector {s.connector} has reported nothing yet"
            )
        plugged = state.plugged
        reading = Reading(
            device=self.name,
            time=utc_now(),
            quality=Quality.GOOD,
            power_kw=None if state.import_w is None else -state.import_w / 1000.0,
            energy_kwh=state.energy_import_kwh,
            soc_fraction=None if state.soc_percent is None or not plugged else state.soc_percent / 100.0,
            plugged=plugged,
            vehicle_id=s.id_tags.get(state.id_tag, state.id_tag) if plugged and state.id_tag else None,
            setpoint_kw=state.setpoint_kw,
        )
        if (
            s.rated_power_kw
            and reading.power_kw is not None
            and abs(reading.power_kw) > s.rated_power_kw * OUT_OF_RANGE_MARGIN
        ):
            return reading.with_quality(
                Quality.OUT_OF_RANGE, f"power {reading.power_kw:.1f} kW beyond rating {s.rated_power_kw} kW"
            )
        if state.meter_at and time.monotonic() - state.meter_at > s.stale_after_s:
            return reading.with_quality(
                Quality.STALE, f"last MeterValues {time.monotonic() - state.meter_at:.0f} s ago"
            )
        return reading

    async def write(self, setpoint_kw: float) -> Ack:
        s = self.settings
        if setpoint_kw > 0 and not s.bidirectional:
            raise DeviceUnavailable(self.name, f"discharge of {setpoint_kw} kW refused: charger is not bidirectional")
        try:
            applied = await asyncio.wait_for(
                self.csms.set_power(s.charge_point_id, s.connector, setpoint_kw), s.timeout_s
            )
        except SetpointFailed as error:
            raise DeviceUnavailable(self.name, error.reason) from None
        except TimeoutError:
            raise DeviceUnavailable(
                self.name, f"set-point {setpoint_kw} kW not answered within {s.timeout_s} s"
            ) from None
        return Ack(self.name, setpoint_kw, applied)
