"""A simulated charger with a plugged taxi on a private broker, and the controller's MQTT drivers for them."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

from drivers.mqtt.devices import MqttCharger, MqttVehicle
from drivers.mqtt.link import BrokerSettings, MqttLink
from drivers.sim.mqtt_device import SimMqttCharger, SimMqttVehicle
from drivers.sim.physics import SimCharger, SimEv

UTC = dt.UTC
NOW = dt.datetime(2026, 4, 15, 3, 0, tzinfo=UTC)


def broker_settings(broker, client_id: str, **extra) -> BrokerSettings:
    return BrokerSettings(host=broker.host, port=broker.port, client_id=client_id, **extra)


class Rig:
    """A simulated charger with a plugged vehicle on the broker, and the controller's driver."""

    def __init__(
        self,
        broker,
        protocol: str = "3.1.1",
        controller: dict | None = None,
        device: dict | None = None,
        root: str = "test",
    ):
        self.vehicle = SimEv("taxi-01", 40.0, 20.0, v2g_allowed=True, charger_id="c1")
        self.charger = SimCharger("c1", 6.0, 6.0, vehicle=self.vehicle)
        lock = threading.Lock()
        self.device = SimMqttCharger(
            self.charger,
            f"{root}/c1",
            broker_settings(broker, "twin-c1", protocol=protocol, reconnect_max_s=0.5, **(device or {})),
            lambda: NOW,
            lock,
        )
        self.car = SimMqttVehicle(
            self.vehicle,
            f"{root}/taxi-01",
            broker_settings(broker, "twin-taxi-01", protocol=protocol, reconnect_max_s=0.5, **(device or {})),
            lambda: NOW,
            lock,
        )
        self.link = MqttLink(
            broker_settings(broker, "ems-controller", protocol=protocol, reconnect_max_s=0.5, **(controller or {}))
        )
        self.driver = MqttCharger(
            MqttCharger.Settings(name="c1", topic_prefix=f"{root}/c1", timeout_s=5.0, bidirectional=True), self.link
        )
        self.vehicle_driver = MqttVehicle(
            MqttVehicle.Settings(name="taxi-01", topic_prefix=f"{root}/taxi-01", timeout_s=2.0), self.link
        )

    async def start(self) -> None:
        self.device.start()
        self.car.start()
        await self.driver.connect()
        await self.vehicle_driver.connect()
        self.link.start()
        for link in (self.device.link, self.car.link, self.link):
            assert await asyncio.to_thread(link.wait_connected, 5.0), f"{link.name}: {link.last_error}"
        self.device.publish()
        self.car.publish()

    def stop(self) -> None:
        self.link.stop()
        self.device.stop()
        self.car.stop()


def run_rig(broker, scenario, **options):
    async def main():
        rig = Rig(broker, **options)
        await rig.start()
        try:
            return await scenario(rig)
        finally:
            rig.stop()

    return asyncio.run(main())
