"""The live dispatcher: riders' requests from MQTT, batched through the same stepping engine as
the replay (``dispatch.engine``), answers to the riders, the fleet contract published, the
energy manager's reservations followed, and everything promised kept in its own store.

Time is simulated (``ems.dispatching.clock``) at any speed; a batch runs at every multiple of
``[dispatch] batch_interval_s`` of simulated time and, with ``quote_interval_s``, a request
arriving between batches is answered at the next multiple of that (``Engine.quote``), as in the
replay. Vehicles move by the engine's own travel model; when a vehicle reports telemetry (state
of charge, plug, and a position if it sends one) that is fresh at the batch time, the engine's
vehicle is set to what it reports first.

A vehicle's state and plan are published when they change (status, plug, route, a tenth of a
kWh, ~10 m) and at least every ``FLEET_REFRESH_S``, not every batch (all of them took 0.1-0.3 s
a batch at 500 vehicles), and a vehicle's stored state is written when it changes.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from dispatch.assign import Policy
from dispatch.demand import DemandModel
from dispatch.engine import Engine, SimVehicle
from dispatch.fleet import fleet_from_portfolio
from dispatch.model import Point, Request, Stop, StopKind
from dispatch.requests_io import ServiceArea
from dispatch.router import Router
from drivers.mqtt.link import MqttLink
from ems.config.schema import Portfolio
from ems.dispatching.bus import mqtt_fleet_publisher
from ems.dispatching.clock import SharedClock
from ems.dispatching.messages import (
    REQUEST_TOPIC,
    RequestRefused,
    RideStatus,
    StatusMessage,
    parse_request,
    status_topic,
)
from ems.dispatching.store import DispatchStore, restore_rider, restore_vehicle, vehicle_state
from ems.dispatching.telemetry import VehicleReport, parse_report, telemetry_filters, vehicle_topics
from ems.fleet import Position, Reservation, RouteStop, VehiclePlan
from ems.fleet import StopKind as RouteKind

log = logging.getLogger(__name__)

ORDER = (RideStatus.ACCEPTED, RideStatus.PICKED_UP, RideStatus.DROPPED_OFF)
FINAL = ("dropped_off", "rejected")
ROUTE_KEY_LENGTH = 4  # a state key starts with the route key (DispatchService._state_key)
FLEET_REFRESH_S = 300.0  # an unchanged vehicle's state and plan are published again after this [simulated s]


@dataclass
class Counters:
    received: int = 0
    duplicates: int = 0
    refused: int = 0
    batches: int = 0
    quotes: int = 0


class DispatchService:
    def __init__(
        self,
        portfolio: Portfolio,
        link: MqttLink,
        store: DispatchStore,
        clock: SharedClock,
        router: Router,
        expected_requests_per_day: float = 200.0,
        policy: Policy | None = None,
    ):
        self.portfolio = portfolio
        self.settings = portfolio.dispatch
        self.link = link
        self.store = store
        self.clock = clock
        self.counters = Counters()
        zone = ZoneInfo(portfolio.portfolio.timezone)
        stored_date = store.meta("service_date")
        date = dt.date.fromisoformat(stored_date) if stored_date else clock.now().astimezone(zone).date()
        store.set_meta("service_date", date.isoformat())
        self.setup = fleet_from_portfolio(portfolio, date)
        self.day = self.setup.clock
        info = portfolio.portfolio
        self.area = ServiceArea(Point(info.latitude_deg, info.longitude_deg), info.service_area_km)
        self.max_seats = max((v.seats for v in portfolio.vehicles), default=0)
        interval = self.settings.batch_interval_s
        last = store.meta("last_step_s")
        if last is None:  # the first batch boundary not yet past (or the clock's start, if still ahead)
            start_s = math.ceil(max(self.day.to_s(clock.now()), self.day.to_s(clock.start)) / interval) * interval
        else:
            start_s = float(last) + interval
        self.engine = Engine(self.setup, router, self.settings, start_s, policy, DemandModel(expected_requests_per_day))
        self.next_s = start_s
        self.last_step_s = start_s - interval
        self.charger_ids = {c.charger_id for c in self.setup.chargers}
        self.site_chargers: dict[str, list[str]] = {}
        for charger in portfolio.chargers:
            self.site_chargers.setdefault(charger.site, []).append(charger.id)
        self._lock = threading.Lock()
        self._wake = threading.Event()  # a request arrived: the loop looks at once whether to quote it
        self.pending: list[Request] = []
        self.announced: dict[str, str] = {}  # request id -> "status:vehicle" last told
        self.open_ids: set[str] = set()  # riders not yet told a final status
        self.published: dict[str, tuple[tuple, float]] = {}  # vehicle -> (what was published, when [s])
        self.stored: dict[str, str] = {}  # vehicle -> its state as last committed
        self.quote_cpu_s = 0.0  # CPU time of the quotes since the last batch (for the batch's log line)
        self._quotes_logged = 0
        self.plugged_since: dict[str, float] = {}
        self.reports: dict[str, VehicleReport] = {}
        self._reservation: Reservation | None = None
        self._reservation_new = False
        self._restore()
        self.publisher = mqtt_fleet_publisher(link, self._on_reservation)
        link.subscribe(REQUEST_TOPIC, self._on_request)
        self.topics = vehicle_topics(portfolio)
        # one wildcard for the twin's vehicles: the link matches each message against every filter
        for topic_filter in telemetry_filters(self.topics, portfolio.twin.topic_root):
            link.subscribe(topic_filter, self._on_telemetry)

    # --- restart -------------------------------------------------------------------------------

    def _restore(self) -> None:
        for vehicle_id, text in self.store.vehicles().items():
            if vehicle_id in self.engine.vehicles:
                restore_vehicle(self.engine.vehicles[vehicle_id], text)
        restored = 0
        for row in self.store.riders():
            if row["request"] == "{}":
                continue  # refused as malformed: no request to serve
            record = restore_rider(row, self.engine.router.leg)
            self.engine.riders[record.request.request_id] = record
            if row["announced"]:
                self.announced[record.request.request_id] = row["announced"]
            if not (row["announced"] or "").startswith(FINAL):
                self.open_ids.add(record.request.request_id)
            if row["status"] == RideStatus.RECEIVED.value:
                self.pending.append(record.request)
            restored += 1
        if restored:
            promised = sum(1 for r in self.engine.riders.values() if r.vehicle_id and r.dropoff_s is None)
            log.info(
                "restored %d riders (%d promised or on board, %d waiting for a batch) and %d vehicles from %s",
                restored,
                promised,
                len(self.pending),
                len(self.engine.vehicles),
                self.store.path,
            )

    # --- MQTT handlers (paho's thread) -----------------------------------------------------------

    def _on_request(self, topic: str, payload: bytes) -> None:
        try:
            request = parse_request(payload, self.area, self.max_seats, self.day)
        except RequestRefused as refused:
            self.counters.refused += 1
            who = f"request {refused.request_id!r}" if refused.request_id else "request without a readable id"
            log.warning("%s on %s refused: %s", who, topic, refused.reason)
            if refused.request_id and self.store.refuse(refused.request_id, refused.reason):
                self._publish_status(
                    StatusMessage(
                        id=refused.request_id,
                        status=RideStatus.REJECTED,
                        time=self.clock.now(),
                        reason="malformed",
                        message=refused.reason,
                    )
                )
            return
        if not self.store.receive(request):
            self.counters.duplicates += 1
            log.info("request %r on %s is a duplicate; the first is kept", request.request_id, topic)
            return
        self.counters.received += 1
        with self._lock:
            self.pending.append(request)
        self._wake.set()

    def _on_reservation(self, reservation: Reservation) -> None:
        with self._lock:
            self._reservation = reservation
            self._reservation_new = True

    def _on_telemetry(self, topic: str, payload: bytes) -> None:
        vehicle_id = self.topics.get(topic)
        if vehicle_id is None:
            return  # under the twin's root but not a vehicle of this portfolio
        report = parse_report(topic, payload, self.day)
        if report is not None:
            with self._lock:
                self.reports[vehicle_id] = report

    def _publish_status(self, message: StatusMessage) -> None:
        self.link.publish(status_topic(message.id), message.model_dump_json(exclude_none=True), retain=True)

    # --- the batch loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event, until_s: float | None = None) -> None:
        """Batch at every interval of simulated time until ``stop`` is set (or ``until_s``); in
        between, quote requests at every ``quote_interval_s`` when set."""
        interval = self.settings.batch_interval_s
        while not stop.is_set() and (until_s is None or self.next_s <= until_s):
            quote_s = self._next_quote_s()
            due_s = self.next_s if quote_s is None else quote_s
            ahead_s = due_s - self.day.to_s(self.clock.now())
            if ahead_s > 0:
                self._wake.wait(min(self.clock.real_seconds(ahead_s), 0.5))
                self._wake.clear()
                continue
            if quote_s is not None:
                self.quote(quote_s)
                continue
            self.batch(self.next_s)
            self.next_s += interval

    def _next_quote_s(self) -> float | None:
        """When the earliest request waiting would be quoted, if before the next batch."""
        quote = self.settings.quote_interval_s
        if quote is None:
            return None
        with self._lock:
            if not self.pending:
                return None
            first_s = min(r.time_s for r in self.pending)
        at = max(math.ceil(first_s / quote) * quote, self.last_step_s)
        return at if at < self.next_s else None

    def quote(self, now: float) -> None:
        """The requests due by ``now`` inserted into the routes as they stand, and answered."""
        started = time.thread_time()
        with self._lock:
            arrived = sorted((r for r in self.pending if r.time_s <= now), key=lambda r: r.time_s)
            self.pending = [r for r in self.pending if r.time_s > now]
        if not arrived:
            return
        self.last_step_s = now
        engine = self.engine
        engine.quote(now, arrived)
        self.open_ids.update(r.request_id for r in arrived)
        changed = [
            vid
            for vid, v in engine.vehicles.items()
            if vid not in self.published or self._route_key(v) != self.published[vid][0][:ROUTE_KEY_LENGTH]
        ]
        routes = {vid: self._route(engine.vehicles[vid], now) for vid in changed}
        riders, messages = self._rider_updates(now, routes, [r.request_id for r in arrived])
        self._commit(now, changed, riders, batch=False)
        for message in messages:  # only after the store holds what they promise
            self._publish_status(message)
        self._publish_fleet(now, routes)
        self.counters.quotes += 1
        self.quote_cpu_s += time.thread_time() - started

    def batch(self, now: float) -> None:
        started_cpu, started = time.thread_time(), time.perf_counter()
        with self._lock:
            arrived = sorted((r for r in self.pending if r.time_s <= now), key=lambda r: r.time_s)
            self.pending = [r for r in self.pending if r.time_s > now]
            reservation = self._reservation if self._reservation_new else None
            self._reservation_new = False
            reports = dict(self.reports)
        self.last_step_s = now
        engine = self.engine
        if reservation is not None:
            try:
                engine.set_reservation(reservation)
                log.info(
                    "following the reservation issued %s: %d shelter calls, %d charge calls",
                    reservation.issued.isoformat(),
                    len(reservation.shelter_calls),
                    len(reservation.charge_calls),
                )
            except ValueError as error:
                log.warning("reservation on ems/reservations not followed: %s", error)
        self._reconcile(now, reports)
        engine.step(now, arrived, self._charge_calls)
        self.open_ids.update(r.request_id for r in arrived)
        stepped = time.perf_counter()
        for vehicle_id, vehicle in engine.vehicles.items():
            if vehicle.plugged is None:
                self.plugged_since.pop(vehicle_id, None)
            else:
                self.plugged_since.setdefault(vehicle_id, now)
        routes = {vid: self._route(v, now) for vid, v in engine.vehicles.items()}
        riders, messages = self._rider_updates(now, routes, list(self.open_ids))
        self._commit(now, list(engine.vehicles), riders, batch=True)
        committed = time.perf_counter()
        for message in messages:  # only after the store holds what they promise
            self._publish_status(message)
        published = self._publish_fleet(now, routes)
        self.counters.batches += 1
        log.info(
            "batch at %s: %d requests, %d riders told, %d vehicles published; step %.0f ms, routes and store %.0f ms, "
            "publish %.0f ms; CPU %.0f ms (and %d quotes since the last batch, CPU %.0f ms)",
            self.day.to_datetime(now).strftime("%H:%M:%S"),
            len(arrived),
            len(messages),
            published,
            (stepped - started) * 1e3,
            (committed - stepped) * 1e3,
            (time.perf_counter() - committed) * 1e3,
            (time.thread_time() - started_cpu) * 1e3,
            self.counters.quotes - self._quotes_logged,
            self.quote_cpu_s * 1e3,
        )
        self._quotes_logged, self.quote_cpu_s = self.counters.quotes, 0.0

    def _commit(self, now: float, vehicle_ids: list[str], riders: dict, batch: bool) -> None:
        """The vehicles whose stored state changed and ``riders``, in one transaction."""
        vehicles = {}
        for vehicle_id in vehicle_ids:
            text = vehicle_state(self.engine.vehicles[vehicle_id])
            if self.stored.get(vehicle_id) != text:
                vehicles[vehicle_id] = self.stored[vehicle_id] = text
        self.store.commit_batch(now if batch else None, vehicles, riders, self.announced)

    # --- riders --------------------------------------------------------------------------------

    def _rider_updates(self, now: float, routes, request_ids: list[str]) -> tuple[dict, list[StatusMessage]]:
        """What to store and tell of the riders ``request_ids`` (their pickup ETAs from ``routes``)."""
        etas = {
            stop.rider_ids[0]: stop.eta
            for route in routes.values()
            for stop in route
            if stop.kind is RouteKind.PICKUP and stop.rider_ids
        }
        at = self.day.to_datetime(now)
        riders, messages = {}, []
        for request_id in request_ids:
            record = self.engine.riders[request_id]
            told = self.announced.get(request_id)
            if told is not None and told.startswith(FINAL):
                self.open_ids.discard(request_id)
                continue
            if record.rejection is not None:
                status = RideStatus.REJECTED
            elif record.dropoff_s is not None:
                status = RideStatus.DROPPED_OFF
            elif record.pickup_s is not None:
                status = RideStatus.PICKED_UP
            elif record.vehicle_id:
                status = RideStatus.ACCEPTED
            else:
                status = RideStatus.RECEIVED
            eta = etas.get(request_id)
            riders[request_id] = (record, status.value, self.day.to_s(eta) if eta else None)
            key = f"{status.value}:{record.vehicle_id}"
            if status is RideStatus.RECEIVED or key == told:
                continue
            if record.rejection is not None:
                rejection = record.rejection
                messages.append(
                    StatusMessage(
                        id=request_id, status=status, time=at, reason=rejection.reason.value, message=rejection.message
                    )
                )
            else:
                done = ORDER.index(RideStatus(told.split(":")[0])) + 1 if told else 0
                for step in ORDER[min(done, ORDER.index(status)) : ORDER.index(status) + 1]:
                    when = {RideStatus.PICKED_UP: record.pickup_s, RideStatus.DROPPED_OFF: record.dropoff_s}.get(step)
                    messages.append(
                        StatusMessage(
                            id=request_id,
                            status=step,
                            time=self.day.to_datetime(when) if when is not None else at,
                            vehicle_id=record.vehicle_id,
                            pickup_eta=eta if step is RideStatus.ACCEPTED else None,
                        )
                    )
            self.announced[request_id] = key
            if key.startswith(FINAL):
                self.open_ids.discard(request_id)
        return riders, messages

    # --- vehicles ------------------------------------------------------------------------------

    def _reconcile(self, now: float, reports: dict[str, VehicleReport]) -> None:
        """Set the engine's vehicles to what they reported, when the report is fresh."""
        interval = self.settings.batch_interval_s
        for vehicle_id, report in reports.items():
            vehicle = self.engine.vehicles.get(vehicle_id)
            if vehicle is None or report.applied or not now - 2 * interval <= report.time_s <= now + interval:
                continue  # stale or ahead: the engine's own model stands
            report.applied = True
            spec = vehicle.spec
            if report.soc is not None:
                vehicle.soc_kwh = report.soc * spec.battery_kwh
            if (
                report.plugged
                and report.charger_id in self.charger_ids
                and vehicle.plugged != report.charger_id
                and not vehicle.stops
            ):
                vehicle.plugged, vehicle.task, vehicle.leg = report.charger_id, None, None
                vehicle.position = self.setup.charger(report.charger_id).point
            elif (
                report.plugged is False
                and vehicle.plugged is not None
                and report.time_s >= self.plugged_since.get(vehicle_id, now) + interval
            ):
                vehicle.plugged = None  # left its charger: idle where it is
                vehicle.ready_s = max(vehicle.ready_s, now)
            if report.position is not None and vehicle.plugged is None:
                vehicle.position = report.position
                if vehicle.leg is not None:  # the rest of the leg is driven from where it really is
                    vehicle.leg = None
                    vehicle.ready_s = max(vehicle.ready_s, min(report.time_s, now))

    def _charge_calls(self, now: float) -> None:
        """The energy manager's charge calls: a vehicle without riders goes to a charger at the
        named site from ``from_time`` and stays there, taking no riders, until ``until_time``."""
        reservation = self.engine.reservation
        if reservation is None:
            return
        vehicles = self.engine.vehicles
        for call in reservation.charge_calls:
            if not self.day.to_s(call.from_time) <= now < self.day.to_s(call.until_time):
                continue
            vehicle = vehicles.get(call.vehicle_id)
            chargers = self.site_chargers.get(call.site_id, [])
            if vehicle is None or vehicle.stops or vehicle.at_shelter or not chargers:
                continue
            if vehicle.plugged in chargers:
                vehicle.locked = True
                continue
            if vehicle.task is not None and vehicle.task.place_id in chargers:
                continue
            taken = {v.plugged for v in vehicles.values()} | {v.task.place_id for v in vehicles.values() if v.task}
            free = [c for c in chargers if c not in taken and c in self.charger_ids]
            if free:
                charger = self.setup.charger(free[0])
                vehicle.task = Stop(StopKind.CHARGER, charger.point, place_id=charger.charger_id)
                vehicle.plugged, vehicle.leg = None, None
                vehicle.ready_s = max(vehicle.ready_s, now)

    def _route(self, vehicle: SimVehicle, now: float) -> tuple[RouteStop, ...]:
        """The stops the vehicle drives next with the engine's expected arrival at each."""
        router, dwell = self.engine.router, self.settings.dwell_s
        targets = list(vehicle.stops) + ([vehicle.task] if vehicle.task is not None and not vehicle.stops else [])
        t, position, route = max(vehicle.ready_s, now), vehicle.position, []
        for index, stop in enumerate(targets):
            leg = vehicle.leg
            if index == 0 and leg is not None and leg.target == stop.point:
                arrival = max(leg.start_s + leg.travel_s, now)
            else:
                arrival = t + router.leg(position, stop.point)[1]
            rider = stop.kind in (StopKind.PICKUP, StopKind.DROPOFF)
            route.append(
                RouteStop(
                    kind=RouteKind(stop.kind.value),
                    position=Position(lat=stop.point.lat, lon=stop.point.lon),
                    eta=self.day.to_datetime(arrival),
                    rider_ids=(stop.request_id,) if rider else (),
                    charger_id=stop.place_id if stop.place_id in self.charger_ids else None,
                    shelter_id=stop.place_id if stop.kind is StopKind.SHELTER else None,
                )
            )
            t, position = arrival + (dwell if rider else 0.0), stop.point
        return tuple(route)

    def _route_key(self, vehicle: SimVehicle) -> tuple:
        """What a plan's route says, without its ETAs (status, plug, stops, task)."""
        task = vehicle.task
        return (
            vehicle.status(),
            vehicle.plugged,
            tuple((s.kind, s.point, s.request_id) for s in vehicle.stops),
            (task.kind, task.point, task.place_id) if task is not None else None,
        )

    def _state_key(self, vehicle: SimVehicle) -> tuple:
        return (
            *self._route_key(vehicle),
            round(vehicle.soc_kwh, 1),
            round(vehicle.position.lat, 4),
            round(vehicle.position.lon, 4),
        )

    def _publish_fleet(self, now: float, routes: dict[str, tuple[RouteStop, ...]]) -> int:
        """The state and plan of each vehicle of ``routes`` that changed since it was last
        published, or was published ``FLEET_REFRESH_S`` ago; how many were published."""
        due = []
        for vehicle_id in routes:
            key = self._state_key(self.engine.vehicles[vehicle_id])
            last = self.published.get(vehicle_id)
            if last is None or last[0] != key or now - last[1] >= FLEET_REFRESH_S:
                due.append(vehicle_id)
                self.published[vehicle_id] = (key, now)
        plans = self.engine._plans(now, due)
        for vehicle_id, state in self.engine._states(now, due).items():
            self.publisher.publish_state(state)
            plan = plans[vehicle_id]
            try:
                plan = VehiclePlan(
                    vehicle_id=vehicle_id, issued=plan.issued, windows=plan.windows, route=routes[vehicle_id]
                )
            except ValidationError as error:  # never stop the service over one plan: publish it without its route
                log.error("route of %s not published: %s", vehicle_id, error.errors()[0]["msg"])
            self.publisher.publish_plan(plan)
        return len(due)
