"""The energy manager's end of the fleet contract over MQTT (docs/architecture.md, Contracts): the
dispatcher's vehicle states and plans in, the reservations out, as JSON of the same pydantic types
used in-process. The dispatcher's end is ``ems.fleet.publisher`` (bound to MQTT in ``ems.dispatching``).

Topics: ``fleet/<vehicle>/state`` (VehicleState), ``fleet/<vehicle>/plan`` (VehiclePlan), both
published retained at QoS 1 by the dispatcher; ``ems/reservations`` (Reservation), retained, by
the energy manager. A message that is malformed, oversized, for an unknown vehicle, names
another vehicle than its topic, is physically impossible (:mod:`ems.fleet.bounds`: a state of
charge beyond the battery, a plan naming a charger the portfolio lacks), is older than the last
good one or older than ``max_age_s`` is rejected with a log line naming the topic and the field;
the last good message is kept and a rejected one never becomes "last good". An empty retained
payload (the publisher cleared its message) forgets the vehicle's state or plan.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
from collections.abc import Callable

from pydantic import ValidationError

from drivers.mqtt.link import MqttLink
from ems.fleet import Reservation, VehiclePlan, VehicleState
from ems.fleet.bounds import FleetBounds
from ems.fleet.publisher import RESERVATIONS_TOPIC

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 64 * 1024
FUTURE_TOLERANCE = dt.timedelta(seconds=60)


class FleetBus:
    """The energy manager's end: keeps the last good state and plan of every vehicle."""

    def __init__(
        self,
        link: MqttLink,
        vehicle_ids: set[str],
        clock: Callable[[], dt.datetime],
        max_age_s: float = 900.0,
        bounds: FleetBounds | None = None,
    ):
        self.link = link
        self.vehicle_ids = set(vehicle_ids)
        self.bounds = bounds or FleetBounds()
        self.clock = clock
        self.max_age = dt.timedelta(seconds=max_age_s)
        self._lock = threading.Lock()
        self._states: dict[str, VehicleState] = {}
        self._plans: dict[str, VehiclePlan] = {}
        self.rejected: collections.deque[tuple[str, str]] = collections.deque(maxlen=200)
        self.rejected_total = 0  # all rejections so far (the deque keeps the latest)
        link.subscribe("fleet/+/state", self._on_state)
        link.subscribe("fleet/+/plan", self._on_plan)

    @property
    def states(self) -> dict[str, VehicleState]:
        with self._lock:
            return dict(self._states)

    @property
    def plans(self) -> dict[str, VehiclePlan]:
        with self._lock:
            return dict(self._plans)

    def rejections_since(self, seen: int) -> tuple[int, list[tuple[str, str]]]:
        """(total so far, the (topic, reason) rejected after the first ``seen``, as far as kept)."""
        with self._lock:
            new = min(self.rejected_total - seen, len(self.rejected))
            return self.rejected_total, list(self.rejected)[len(self.rejected) - new :] if new > 0 else []

    def _reject(self, topic: str, reason: str) -> None:
        log.warning("fleet message on %s rejected: %s; last good state kept", topic, reason)
        with self._lock:
            self.rejected_total += 1
            self.rejected.append((topic, reason))  # after the log line: readers may wait on this

    def _parse(self, topic: str, payload: bytes, model: type[VehicleState] | type[VehiclePlan]):
        parts = topic.split("/")
        vehicle = parts[1] if len(parts) == 3 else ""
        if vehicle not in self.vehicle_ids:
            return self._reject(topic, f"unknown vehicle {vehicle!r}")
        if len(payload) > MAX_PAYLOAD_BYTES:
            return self._reject(topic, f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        try:
            message = model.model_validate_json(payload)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(payload)"
            return self._reject(topic, f"field {field}: {first['msg']}")
        if message.vehicle_id != vehicle:
            return self._reject(topic, f"field vehicle_id: {message.vehicle_id!r} does not match the topic")
        problem = (
            self.bounds.check_state(message) if isinstance(message, VehicleState) else self.bounds.check_plan(message)
        )
        if problem is not None:
            return self._reject(topic, f"field {problem[0]}: {problem[1]}")
        return message

    def _fresh(self, topic: str, stamp: dt.datetime, last: dt.datetime | None, field: str) -> bool:
        now = self.clock()
        if stamp < now - self.max_age:
            self._reject(topic, f"field {field}: {stamp.isoformat()} is stale (older than {self.max_age})")
        elif stamp > now + FUTURE_TOLERANCE:
            self._reject(topic, f"field {field}: {stamp.isoformat()} is in the future")
        elif last is not None and stamp < last:
            self._reject(topic, f"field {field}: {stamp.isoformat()} is older than the last good message")
        else:
            return True
        return False

    def _accept(
        self, topic: str, payload: bytes, model: type[VehicleState] | type[VehiclePlan], stamp_field: str, latest: dict
    ) -> None:
        """Keep a message in ``latest`` if it parses, fits its topic and is fresh and in order."""
        parts = topic.split("/")
        if not payload and len(parts) == 3 and parts[1] in self.vehicle_ids:
            with self._lock:
                latest.pop(parts[1], None)
            log.info("fleet message on %s cleared by its publisher; forgotten", topic)
            return
        message = self._parse(topic, payload, model)
        if message is None:
            return
        with self._lock:
            last = latest.get(message.vehicle_id)
        last_stamp = getattr(last, stamp_field) if last is not None else None
        if self._fresh(topic, getattr(message, stamp_field), last_stamp, stamp_field):
            with self._lock:
                latest[message.vehicle_id] = message

    def _on_state(self, topic: str, payload: bytes) -> None:
        self._accept(topic, payload, VehicleState, "time", self._states)

    def _on_plan(self, topic: str, payload: bytes) -> None:
        self._accept(topic, payload, VehiclePlan, "issued", self._plans)

    def publish_reservation(self, reservation: Reservation) -> None:
        self.link.publish(RESERVATIONS_TOPIC, reservation.model_dump_json(), retain=True)
