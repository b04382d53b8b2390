"""A controller and the digital twin on one hand-stepped clock, over real Modbus and MQTT."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

from drivers.mqtt.link import BrokerSettings, MqttLink
from drivers.sim.clock import ManualClock
from ems.config import load_portfolio
from ems.control.controller import Controller
from ems.devices import DeviceSet, controller_broker
from ems.store import Store

REFERENCE = Path("config/arao.toml")
START = dt.datetime(2026, 4, 15, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def fast_twin_portfolio(**planning):
    """The reference portfolio with a twin that steps and publishes often (real time)."""
    portfolio = load_portfolio(REFERENCE)
    twin = portfolio.twin.model_copy(update={"step_s": 0.02, "publish_interval_s": 0.1})
    update: dict[str, object] = {"twin": twin}
    if planning:
        update["planning"] = portfolio.planning.model_copy(update=planning)
    return portfolio.model_copy(update=update)


class SteppedRun:
    """Advance simulated time by hand: the twin integrates, publishes, then the controller acts."""

    def __init__(
        self,
        twin_factory,
        broker,
        store_path: Path,
        portfolio=None,
        start: dt.datetime = START,
        horizon_hours: int = 24,
    ):
        self.clock = ManualClock(start)
        self.portfolio = portfolio or fast_twin_portfolio()
        self.runner = twin_factory(REFERENCE, broker, clock=self.clock, portfolio=self.portfolio)
        self.twin = self.runner.twin
        self.served = self.twin.portfolio  # with the ports the twin listens on
        self.broker = broker
        self.store_path = store_path
        self.horizon_hours = horizon_hours
        self.controller: Controller | None = None
        self.devices: DeviceSet | None = None

    async def open_controller(self) -> Controller:
        self.store = Store(self.store_path)
        self.devices = DeviceSet(
            self.served, controller_broker(self.served, REFERENCE, self.broker.host, self.broker.port)
        )
        await self.devices.open()
        self.controller = Controller(
            self.served,
            REFERENCE,
            self.devices,
            self.store,
            self.clock.now,
            inputs="profiles",
            horizon_hours=self.horizon_hours,
        )
        return self.controller

    async def close_controller(self) -> None:
        if self.devices is not None:
            await self.devices.close()
        self.store.close()

    async def advance(self, seconds: float) -> None:
        now = self.clock.advance(seconds)
        deadline = time.monotonic() + 5
        while (self.twin.last_step is None or self.twin.last_step < now) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for device in self.twin.mqtt_devices.values():
            device.publish()
        await asyncio.sleep(0.12)  # let the retained telemetry arrive

    def battery(self, battery_id: str):
        return self.twin.physics[battery_id]


def mqtt_link(broker, client_id: str) -> MqttLink:
    """A connected MQTT client of a test, as an operator's or a dispatcher's process would be."""
    link = MqttLink(BrokerSettings(host=broker.host, port=broker.port, client_id=client_id))
    link.start()
    assert link.wait_connected(5)
    return link


def wait_until(condition, timeout_s: float = 3.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _ratings(portfolio) -> dict[str, tuple[float, float]]:
    limits = {b.id: (-b.charge_power_kw, b.discharge_power_kw) for b in portfolio.batteries}
    limits |= {c.id: (-c.charge_power_kw, c.discharge_power_kw) for c in portfolio.chargers}
    return limits


def assert_setpoints_within_ratings(store: Store, portfolio) -> None:
    """Every set-point written to a battery or charger lies within its charge and discharge ratings."""
    rows = list(store.rows("setpoints"))[1:]
    limits = _ratings(portfolio)
    assert rows, "no set-point was recorded"
    for _time, device, _requested, written, status, _reason in rows:
        if written is not None:
            low, high = limits[device]
            assert low - 1e-6 <= written <= high + 1e-6, (device, written, status)
