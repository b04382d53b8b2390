"""What the controller asks of the parts handed to it: the devices, the fleet bus and the BCP
switch, as small structural types (any object with these members will do, as in the tests).

The live ones are ``ems.devices.DeviceSet``, ``ems.control.fleetbus.FleetBus`` and the command
line's ``BcpSwitch`` (which plans with ``ems/bcp``; the controller never imports the planner).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from drivers.api import Reading, Writable
from ems.fleet import Reservation, VehiclePlan, VehicleState
from ems.guard import WriteGuard

if TYPE_CHECKING:
    from ems.bcp.mode import BcpMode
    from ems.bcp.outage import Outage


class Devices(Protocol):
    """The devices, read together and written one by one through the guard."""

    @property
    def drivers(self) -> Mapping[str, Writable]: ...

    @property
    def guard(self) -> WriteGuard: ...

    async def read_all(self) -> list[Reading]: ...


class Fleet(Protocol):
    """The dispatcher's side of the fleet contract: its latest vehicle states and plans in, the
    reservation out."""

    @property
    def states(self) -> Mapping[str, VehicleState]: ...

    @property
    def plans(self) -> Mapping[str, VehiclePlan]: ...

    def rejections_since(self, seen: int) -> tuple[int, list[tuple[str, str]]]:
        """(messages rejected so far, the (topic, reason) of those after the first ``seen``)."""
        ...

    def publish_reservation(self, reservation: Reservation) -> None: ...


class Bcp(Protocol):
    """The operator's BCP switch and the BCP plan's reservation for an outage."""

    def current(self) -> BcpMode | None:
        """The operator's latest mode record, or None when BCP mode was never switched."""
        ...

    def reservation(self, outage: Outage, soc_kwh: dict[str, float], now: dt.datetime) -> Reservation:
        """Energy each vehicle must keep, and the shelter calls, from the BCP plan for ``outage``."""
        ...
