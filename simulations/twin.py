"""The digital twin: every ``kind = "sim"`` asset of a portfolio, simulated and served over the
real protocols (SunSpec Modbus TCP, MQTT), on a clock that may run faster than real time.

``Twin.step(now, dt_s)`` advances the physics; ``Twin.run()`` serves and steps until stopped.
Where each asset is served comes from :func:`ems.devices.endpoints`, which ``ems devices`` uses too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.modbus.security import ServerTls
from drivers.mqtt.credentials import resolve_credentials
from drivers.mqtt.link import BrokerSettings, MqttLink
from drivers.mqtt.presence import check_absent, presence_wills
from drivers.sim.clock import Clock, ScaledClock
from drivers.sim.devices import SunSpecBatteryDevice, SunSpecMeterDevice, SunSpecPvDevice
from drivers.sim.modbus_server import ModbusDeviceServer
from drivers.sim.mqtt_device import SimMqttCharger, SimMqttDevice, SimMqttVehicle
from drivers.sim.physics import PlugWindow, SimBattery, SimCharger, SimEv, SimLoad, SimMeter, SimPv
from ems.config import profile_values
from ems.config.schema import Portfolio
from ems.devices import DeviceEndpoint, endpoints
from ems.fleet import VehiclePlan, plans_from_duties
from simulations.twin_routes import RouteFollower

log = logging.getLogger(__name__)

PLAN_DAYS = 7  # vehicles' plug windows are computed this far ahead, and renewed a day early
MAX_PLAN_BYTES = 64 * 1024
MAX_PLAN_AGE = dt.timedelta(minutes=15)  # an older plan is not driven (the dispatcher re-plans every batch)
PLANS_TOPIC = "fleet/+/plan"


@dataclass
class TwinOptions:
    mqtt_host: str | None = None
    mqtt_port: int | None = None
    modbus_base_port: int | None = None
    speed: float | None = None
    start: dt.datetime | None = None
    serve_mqtt: bool = True
    chargers: str | None = None  # "mqtt" or "ocpp": overrides [twin] chargers
    v2h: str | None = None  # "mqtt" or "echonet": overrides [twin] v2h
    record_dir: Path | None = None  # the twin's own record of its vehicles and chargers (simulations.twin_record)
    record_every_s: float = 300.0  # simulated seconds between recorded rows


@dataclass
class Site:
    grid: list[SimMeter] = field(default_factory=list)
    others: list = field(default_factory=list)


class Twin:
    def __init__(
        self,
        portfolio: Portfolio,
        config_path: str | Path,
        options: TwinOptions | None = None,
        clock: Clock | None = None,
    ):
        options = options or TwinOptions()
        self.portfolio = portfolio
        self.config_path = Path(config_path)
        self.zone = ZoneInfo(portfolio.portfolio.timezone)
        twin = portfolio.twin
        protocols = {k: v for k, v in (("chargers", options.chargers), ("v2h", options.v2h)) if v is not None}
        if options.modbus_base_port is not None or protocols:
            twin = twin.model_copy(
                update={"modbus_base_port": options.modbus_base_port or twin.modbus_base_port, **protocols}
            )
            portfolio = portfolio.model_copy(update={"twin": twin})
            self.portfolio = portfolio
        start = options.start or twin.start or dt.datetime.now(dt.UTC)
        self.clock = clock or ScaledClock(start, options.speed or twin.speed)
        self.options = options
        self.lock = threading.Lock()  # physics is touched by the stepping loop and MQTT threads
        self.endpoints = [e for e in endpoints(portfolio) if e.simulated]
        self.sites: dict[str, Site] = {s.id: Site() for s in portfolio.sites}
        self.physics: dict[str, SimPv | SimMeter | SimBattery | SimCharger] = {}  # SimLoad is a SimMeter
        self.vehicles: dict[str, SimEv] = {}
        self.chargers: dict[str, SimCharger] = {}
        self.followers: dict[str, RouteFollower] = {}  # vehicles driving the dispatcher's routes
        self.plans_received = 0
        self.plans_rejected: list[tuple[str, str]] = []  # (topic, reason)
        self._build_physics()
        self.plans_until = self.clock.now()
        self._refresh_plans(self.clock.now())
        self.modbus_devices: dict[str, SunSpecPvDevice | SunSpecBatteryDevice | SunSpecMeterDevice] = {}
        self.servers: dict[str, ModbusDeviceServer] = {}
        self.mqtt_devices: dict[str, SimMqttDevice] = {}
        self.presence: MqttLink | None = None  # holds the twin's client id on the broker while it serves
        self._build_devices()
        self.last_step: dt.datetime | None = None
        self.step(self.clock.now(), 0.0)

    # --- physics -----------------------------------------------------------------------------

    def _profile(self, name: str) -> tuple[float, ...]:
        return profile_values(self.portfolio.profiles[name], self.config_path)

    def _build_physics(self) -> None:
        p = self.portfolio
        for g in p.grid_connections:
            meter = SimMeter(g.id)
            self.physics[g.id] = meter
            self.sites[g.site].grid.append(meter)
        for pv in p.pv_arrays:
            self._add(
                pv.site, SimPv(pv.id, pv.capacity_kwp, self._profile(pv.profile), self.zone, pv.inverter_limit_kw)
            )
        for load in p.loads:
            self._add(
                load.site, SimLoad(load.id, peak_kw=load.peak_kw, profile=self._profile(load.profile), zone=self.zone)
            )
        for shelter in p.shelters:
            # The shelter's critical load is part of the site's load; its meter shows it alone.
            self.physics[shelter.id] = SimLoad(
                shelter.id, peak_kw=shelter.critical_load_kw, profile=self._profile(shelter.profile), zone=self.zone
            )
        for b in p.batteries:
            self._add(
                b.site,
                SimBattery(
                    b.id,
                    b.capacity_kwh,
                    b.charge_power_kw,
                    b.discharge_power_kw,
                    soc_kwh=b.initial_soc_fraction * b.capacity_kwh,
                    charge_efficiency=b.charge_efficiency,
                    discharge_efficiency=b.discharge_efficiency,
                    soc_min_fraction=b.soc_min_fraction,
                    soc_max_fraction=b.soc_max_fraction,
                ),
            )
        for c in p.chargers:
            charger = SimCharger(c.id, c.charge_power_kw, c.discharge_power_kw, c.efficiency)
            self.chargers[c.id] = charger
            self._add(c.site, charger)
        sites = {s.id: (s.latitude_deg, s.longitude_deg) for s in p.sites}
        charger_sites = {c.id: c.site for c in p.chargers}
        for v in p.vehicles:
            home = charger_sites.get(v.home_charger) if v.home_charger else None
            self.vehicles[v.id] = SimEv(
                v.id,
                v.battery_kwh,
                v.initial_soc_fraction * v.battery_kwh,
                soc_min_fraction=v.soc_min_fraction,
                soc_max_fraction=v.soc_max_fraction,
                v2g_allowed=v.v2g_allowed,
                position=sites.get(home or p.portfolio.depot_site or ""),
            )

    def _add(self, site: str, device) -> None:
        self.physics[device.name] = device
        self.sites[site].others.append(device)

    def _refresh_plans(self, now: dt.datetime) -> None:
        if now < self.plans_until - dt.timedelta(days=1):
            return
        self.plans_until = now + dt.timedelta(days=PLAN_DAYS)
        plans = plans_from_duties(self.portfolio, now - dt.timedelta(days=1), self.plans_until)
        for vehicle_id, plan in plans.items():
            self.vehicles[vehicle_id].windows = tuple(
                PlugWindow(w.charger_id, w.plug_in, w.plug_out, w.trip_energy_kwh) for w in plan.windows
            )

    def step(self, now: dt.datetime, dt_s: float) -> None:
        """Advance every device by ``dt_s`` seconds ending at ``now`` and refresh what is served."""
        with self.lock:
            self._refresh_plans(now)
            # First integrate the interval that ends now, in the state it had; then change state.
            for device in self.physics.values():
                if not isinstance(device, SimMeter) or isinstance(device, SimLoad):
                    device.step(now, dt_s)
            taken = {v.charger_id for v in self.vehicles.values() if v.charger_id}
            for name, vehicle in self.vehicles.items():
                follower = self.followers.get(name)
                if follower is None:
                    vehicle.step(now, dt_s)
                else:
                    follower.step(now, taken - {vehicle.charger_id}, set(self.chargers))
                    taken = {v.charger_id for v in self.vehicles.values() if v.charger_id}
            plugged = {v.charger_id: v for v in self.vehicles.values() if v.charger_id}
            for charger in self.chargers.values():
                plugged_vehicle = plugged.get(charger.name)
                if plugged_vehicle is not charger.vehicle:
                    charger.vehicle = plugged_vehicle
                    charger.apply_setpoint(0.0)  # a new session starts idle, not at the last car's set-point
            for site in self.sites.values():
                balance = sum(d.power_kw for d in site.others)
                for meter in site.grid:
                    meter.step(now, dt_s)
                    meter.power_kw = -balance / len(site.grid)
            for modbus_device in self.modbus_devices.values():
                modbus_device.refresh()
        self.last_step = now

    # --- the dispatcher's routes --------------------------------------------------------------

    def follow_plan(self, plan: VehiclePlan, now: dt.datetime | None = None) -> None:
        """Drive ``plan.route`` from now on (a plan without a route leaves a vehicle that never
        had one on its plug windows)."""
        vehicle = self.vehicles[plan.vehicle_id]
        follower = self.followers.get(plan.vehicle_id)
        if follower is None:
            if not plan.route:
                return
            from dispatch.router import make_router

            settings = self.portfolio.dispatch
            road_graph = settings.road_graph_file
            if road_graph is not None and not Path(road_graph).is_absolute():
                road_graph = str(self.config_path.parent / road_graph)
            if getattr(self, "_router", None) is None:
                self._router = make_router(settings.speed_kmh, settings.detour_factor, road_graph)
            config = next(v for v in self.portfolio.vehicles if v.id == plan.vehicle_id)
            v2h_points = {s.id: s.v2h_points for s in self.portfolio.shelters}
            follower = RouteFollower(vehicle, self._router, config.consumption_kwh_per_km, settings.dwell_s, v2h_points)
        with self.lock:
            self.followers[plan.vehicle_id] = follower
            follower.follow(plan, now or self.clock.now())
            self.plans_received += 1

    def _on_plan(self, topic: str, payload: bytes) -> None:
        reason = self._plan_problem(topic, payload)
        if isinstance(reason, str):
            self.plans_rejected.append((topic, reason))
            log.warning("twin: plan on %s rejected: %s", topic, reason)
            return
        self.follow_plan(reason)

    def _plan_problem(self, topic: str, payload: bytes) -> VehiclePlan | str:
        """The plan, or why it is refused (naming the field)."""
        if not payload:
            return "empty payload (plan cleared)"
        if len(payload) > MAX_PLAN_BYTES:
            return f"payload of {len(payload)} bytes exceeds {MAX_PLAN_BYTES}"
        vehicle_id = topic.split("/")[1] if topic.count("/") == 2 else ""
        if vehicle_id not in self.vehicles:
            return f"unknown vehicle {vehicle_id!r}"
        try:
            plan = VehiclePlan.model_validate_json(payload)
        except ValueError as error:
            first = error.errors()[0] if hasattr(error, "errors") else {"loc": (), "msg": str(error)}
            return f"field {'.'.join(str(p) for p in first['loc']) or '(root)'}: {first['msg']}"
        if plan.vehicle_id != vehicle_id:
            return f"field vehicle_id: {plan.vehicle_id!r} is not the topic's vehicle {vehicle_id!r}"
        now = self.clock.now()
        if plan.issued < now - MAX_PLAN_AGE:  # e.g. a retained plan of an earlier run on the same broker
            return (
                f"field issued: {plan.issued.isoformat()} is more than {MAX_PLAN_AGE.total_seconds():.0f} s "
                f"before now ({now.isoformat()})"
            )
        follower = self.followers.get(vehicle_id)
        if follower is not None and follower.plan_issued is not None and plan.issued < follower.plan_issued:
            return (
                f"field issued: {plan.issued.isoformat()} is older than the plan being driven "
                f"({follower.plan_issued.isoformat()})"
            )
        for index, stop in enumerate(plan.route):
            if stop.charger_id is not None and stop.charger_id not in self.chargers:
                return f"field route.{index}.charger_id: unknown charger {stop.charger_id!r}"
        return plan

    # --- serving -----------------------------------------------------------------------------

    def _build_devices(self) -> None:
        for endpoint in self.endpoints:
            physics = self.physics.get(endpoint.asset_id) or self.vehicles.get(endpoint.asset_id)
            if endpoint.protocol == "modbus":
                device = self._modbus_device(endpoint, physics)
                self.modbus_devices[endpoint.asset_id] = device
                s = endpoint.settings
                self.servers[endpoint.asset_id] = ModbusDeviceServer(
                    endpoint.asset_id, device.store, s["host"], s["port"], tls=self._server_tls()
                )
        from simulations.twin_protocols import ProtocolDevices

        self.protocol_devices = ProtocolDevices(
            self.portfolio, self.config_path, self.endpoints, self.chargers, self.lock
        )
        if self.options.serve_mqtt:
            for endpoint in self.endpoints:
                if endpoint.protocol == "mqtt":
                    self.mqtt_devices[endpoint.asset_id] = self._mqtt_device(endpoint)

    def _server_tls(self) -> ServerTls | None:
        tls = self.portfolio.twin.modbus_tls
        if tls is None:
            return None
        return ServerTls(ca_file=tls.ca_file, cert_file=tls.server_cert_file, key_file=tls.server_key_file)

    @staticmethod
    def _modbus_device(
        endpoint: DeviceEndpoint, physics
    ) -> SunSpecPvDevice | SunSpecBatteryDevice | SunSpecMeterDevice:
        rating = endpoint.settings["rated_power_kw"]
        if endpoint.asset_type == "pv":
            return SunSpecPvDevice(physics)
        if endpoint.asset_type == "battery":
            return SunSpecBatteryDevice(physics)
        return SunSpecMeterDevice(physics, rating, consumption_positive=endpoint.settings["invert_sign"])

    def broker(self, client_id: str) -> BrokerSettings:
        mqtt, twin = self.portfolio.mqtt, self.portfolio.twin
        base = self.config_path.parent
        credentials_file = str(base / twin.credentials_file) if twin.credentials_file else None
        user, password = resolve_credentials(twin.username_env, twin.password_env, credentials_file)
        return BrokerSettings(
            host=self.options.mqtt_host or mqtt.host,
            port=self.options.mqtt_port or mqtt.port,
            client_id=client_id,
            protocol=mqtt.protocol,
            tls=mqtt.tls,
            ca_file=str(base / mqtt.ca_file) if mqtt.ca_file else None,
            username=user,
            password=password,
        )

    def _mqtt_device(self, endpoint: DeviceEndpoint) -> SimMqttDevice:
        broker = self.broker(f"{self.portfolio.twin.client_id_prefix}-{endpoint.asset_id}")
        prefix = endpoint.settings["topic_prefix"]
        if endpoint.asset_type == "charger":
            return SimMqttCharger(self.chargers[endpoint.asset_id], prefix, broker, self.clock.now, self.lock)
        return SimMqttVehicle(self.vehicles[endpoint.asset_id], prefix, broker, self.clock.now, self.lock)

    def describe(self) -> list[str]:
        """One line per served device: id, type, where."""
        lines = []
        for e in self.endpoints:
            if e.protocol == "mqtt" and not self.options.serve_mqtt:
                continue
            where = e.where
            if e.protocol == "mqtt":
                b = self.broker("x")
                topics = "telemetry,availability,command,ack" if e.asset_type == "charger" else "telemetry,availability"
                where = f"mqtt://{b.host}:{b.port} {e.settings['topic_prefix']}/{{{topics}}}"
            elif e.protocol == "ocpp":
                ocpp = self.portfolio.ocpp
                where = f"OCPP 1.6 charge point {e.settings['charge_point_id']} -> [ocpp] {ocpp.host}:{ocpp.port}"
            elif e.protocol == "echonet":
                where = f"ECHONET Lite 0x027E node {e.settings['host']}:{e.settings['port']}"
            lines.append(f"{e.asset_id:<24} {e.asset_type:<8} {where}")
        return lines

    def presence_client_id(self) -> str:
        """The twin's own MQTT client id (its devices' ids are ``<prefix>-<device>``)."""
        twin = self.portfolio.twin
        return f"{twin.client_id_prefix}-{twin.topic_root}".replace("/", "-")

    async def _claim_presence(self) -> None:
        """Refuse to start if another twin serves this topic root on this broker (AlreadyRunning)."""
        if not self.mqtt_devices:
            return
        client_id = self.presence_client_id()
        broker = self.broker(client_id)
        await asyncio.to_thread(check_absent, broker, self.portfolio.twin.mqtt_timeout_s)
        will, birth = presence_wills(client_id, "digital twin")
        self.presence = MqttLink(broker, will=will, birth=birth)
        if self.vehicles:  # the dispatcher's routes, on the twin's own connection
            self.presence.subscribe(PLANS_TOPIC, self._on_plan)
        self.presence.start()

    async def start(self) -> None:
        await self._claim_presence()
        for server in self.servers.values():
            await server.start()
        for device in self.mqtt_devices.values():
            device.start()
        await self.protocol_devices.start()

    async def stop(self) -> None:
        # each MQTT client's network thread takes up to a second to end: stop them together
        links = [device.link for device in self.mqtt_devices.values()] + ([self.presence] if self.presence else [])
        await asyncio.gather(*(asyncio.to_thread(link.stop) for link in links))
        self.presence = None
        await self.protocol_devices.stop()
        for server in self.servers.values():
            await server.stop()

    async def run(self, stop: asyncio.Event, on_started=None) -> None:
        """Serve and step until ``stop`` is set; ``on_started()`` is called once all listen."""
        twin = self.portfolio.twin
        recorder = None
        if self.options.record_dir is not None:
            from simulations.twin_record import TwinRecorder

            recorder = TwinRecorder(self, self.options.record_dir, self.options.record_every_s)
        try:
            await self.start()
            if on_started is not None:
                on_started()
            loop = asyncio.get_running_loop()
            next_publish = loop.time()
            while not stop.is_set():
                now = self.clock.now()
                self.step(now, (now - self.last_step).total_seconds() if self.last_step else 0.0)
                if recorder is not None:
                    recorder.record(now)
                if loop.time() >= next_publish:
                    for device in self.mqtt_devices.values():
                        device.publish()
                    await self.protocol_devices.publish()
                    next_publish = loop.time() + twin.publish_interval_s
                try:
                    await asyncio.wait_for(stop.wait(), min(twin.step_s, twin.publish_interval_s))
                except TimeoutError:
                    pass
        finally:
            if recorder is not None:
                recorder.close(self.last_step or self.clock.now())
            await self.stop()


class TwinThread:
    """Runs a twin on its own event loop in a background thread (tests, benchmarks)."""

    def __init__(self, twin: Twin):
        self.twin = twin
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="twin", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.twin.run(self._stop, on_started=self._ready.set)

        try:
            asyncio.run(main())
        except BaseException as error:
            self._error = error
            self._ready.set()

    def start(self, timeout_s: float = 10.0) -> TwinThread:
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise RuntimeError(f"twin did not start: {self._error!r}")
        deadline = time.monotonic() + timeout_s
        for device in self.twin.mqtt_devices.values():
            device.link.wait_connected(max(0.0, deadline - time.monotonic()))
        return self

    def call(self, coroutine_factory, timeout_s: float = 10.0):
        """Run a coroutine on the twin's loop (e.g. stop one device's server)."""
        if self._loop is None:
            raise RuntimeError("twin thread not started: call start() first")
        return asyncio.run_coroutine_threadsafe(coroutine_factory(), self._loop).result(timeout_s)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
