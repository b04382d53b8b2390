"""The twin's OCPP charge points and ECHONET Lite nodes (``[twin] chargers / v2h``).

Kept apart from :mod:`simulations.twin` so that the twin itself only hands over its endpoints,
physics and clock, and starts, publishes and stops what is built here.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from pathlib import Path

from drivers.sim.echonet_node import EchonetNode, V2hObject
from drivers.sim.ocpp_charge_point import SimOcppChargePoint
from drivers.sim.physics import SimCharger
from ems.config.schema import Portfolio
from ems.devices import DeviceEndpoint, csms_config


class ProtocolDevices:
    """The twin's devices that speak OCPP or ECHONET Lite, built from its endpoints."""

    def __init__(
        self,
        portfolio: Portfolio,
        config_path: Path,
        endpoints: list[DeviceEndpoint],
        chargers: dict[str, SimCharger],
        lock: threading.Lock,
    ):
        self.charge_points: dict[str, SimOcppChargePoint] = {}
        self.nodes: dict[str, EchonetNode] = {}
        ocpp = [e for e in endpoints if e.protocol == "ocpp"]
        if ocpp:
            config = csms_config(portfolio, config_path)
            host = "127.0.0.1" if config.host in ("0.0.0.0", "") else config.host
            scheme = "wss" if config.security_profile == 2 else "ws"
            context = ssl.create_default_context(cafile=config.cert_file) if config.security_profile == 2 else None
            for e in ocpp:
                password = config.passwords.get(e.asset_id) if config.security_profile else None
                self.charge_points[e.asset_id] = SimOcppChargePoint(
                    chargers[e.asset_id],
                    f"{scheme}://{host}:{config.port}",
                    lock,
                    password,
                    context,
                    retry_s=portfolio.twin.ocpp_retry_s,
                )
        for e in endpoints:
            if e.protocol == "echonet":
                self.nodes[e.asset_id] = EchonetNode(
                    e.settings["host"], e.settings["port"], V2hObject(chargers[e.asset_id], lock), join_group=True
                )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._publishing: dict[str, asyncio.Task] = {}

    async def start(self) -> None:
        self._stop.clear()
        for node in self.nodes.values():
            await node.start()
        self._tasks = [asyncio.create_task(cp.run(self._stop)) for cp in self.charge_points.values()]

    async def publish(self) -> None:
        """Start each charge point's MeterValues; one still under way is not started again,
        so a slow central system never holds up the twin's physics."""
        for name, cp in self.charge_points.items():
            task = self._publishing.get(name)
            if task is None or task.done():
                self._publishing[name] = asyncio.create_task(cp.publish())

    async def stop(self) -> None:
        self._stop.set()
        for task in self._publishing.values():
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for node in self.nodes.values():
            await node.stop()
