"""A template driver to copy when adding a device kind (it is registered as ``template``).

1. Copy this file next to the protocol it speaks, rename the class and the registered name.
2. Declare its typed ``Settings`` (pydantic); ``drivers.registry.create(name, mapping)``
   validates a config table into them, tests call ``Cls(Cls.Settings(...))`` directly.
3. Shared connections it takes from its host (the MQTT link, the OCPP central system, the
   ECHONET Lite socket) go in ``needs`` on the class and arrive as constructor keywords of
   those names (``drivers.api.SHARED_CONNECTIONS``); this one needs none; ``where(settings)``
   says how its device is reached. Nothing else to wire: the registry finds the module by
   walking ``drivers/``.
4. ``read()`` must return within the timeout and never raise for a silent device: return
   ``Reading.missing(...)`` instead. ``write()`` raises ``NotWritable`` for a read-only device
   and ``DeviceUnavailable`` when a set-point cannot be delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from drivers.api import NotWritable, Quality, Reading, utc_now
from drivers.registry import register


class TemplateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    fixed_power_kw: float = 0.0


@register("template")
class TemplateMeter:
    """Reports a fixed power: a stand-in with the shape of a real driver."""

    Settings = TemplateSettings
    needs: frozenset[str] = frozenset()  # shared connections it takes (drivers.api.SHARED_CONNECTIONS): none
    writable = False

    @staticmethod
    def where(settings: Mapping[str, Any]) -> str:
        """How the device is reached, for listings (``ems twin``, ``DeviceEndpoint.where``)."""
        return f"template:{settings['name']}"

    def __init__(self, settings: TemplateSettings):
        self.settings = settings
        self.name = settings.name

    async def connect(self) -> None:
        """Open the connection here, or on demand in ``read()``."""

    async def close(self) -> None:
        """Release the connection."""

    async def read(self) -> Reading:
        return Reading(device=self.name, time=utc_now(), quality=Quality.GOOD, power_kw=self.settings.fixed_power_kw)

    async def write(self, setpoint_kw: float):
        raise NotWritable(self.name)
