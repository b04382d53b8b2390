"""The dispatcher's end of the fleet contract: topic names, and the publisher of states and plans
that reads the energy manager's reservations (docs/architecture.md, Contracts).

It knows no MQTT client: it is given a ``publish(topic, payload, retain)`` callable and hands
out :meth:`FleetPublisher.on_reservation` as the handler of :data:`RESERVATIONS_TOPIC`, so the
ground floor imports no driver. The live binding is ``ems.dispatching``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pydantic import ValidationError

from ems.fleet import Reservation, VehiclePlan, VehicleState

log = logging.getLogger(__name__)

RESERVATIONS_TOPIC = "ems/reservations"

Publish = Callable[[str, str, bool], object]


def state_topic(vehicle_id: str) -> str:
    return f"fleet/{vehicle_id}/state"


def plan_topic(vehicle_id: str) -> str:
    return f"fleet/{vehicle_id}/plan"


class FleetPublisher:
    """Publishes states and plans (retained, QoS 1 by the given callable); keeps the last good
    reservation. ``on_change`` is called with each new reservation."""

    def __init__(self, publish: Publish, on_change: Callable[[Reservation], None] | None = None):
        self._publish = publish
        self._on_change = on_change
        self._reservation: Reservation | None = None
        self._lock = threading.Lock()

    def publish_state(self, state: VehicleState) -> None:
        self._publish(state_topic(state.vehicle_id), state.model_dump_json(), True)

    def publish_plan(self, plan: VehiclePlan) -> None:
        self._publish(plan_topic(plan.vehicle_id), plan.model_dump_json(), True)

    @property
    def reservation(self) -> Reservation | None:
        with self._lock:
            return self._reservation

    def on_reservation(self, topic: str, payload: bytes) -> None:
        """Handler of ``ems/reservations``: a malformed one is logged and the last good kept."""
        if not payload:
            return
        try:
            reservation = Reservation.model_validate_json(payload)
        except ValidationError as error:
            first = error.errors()[0]
            log.warning(
                "reservation on %s rejected: field %s: %s", topic, ".".join(map(str, first["loc"])), first["msg"]
            )
            return
        with self._lock:
            self._reservation = reservation
        if self._on_change is not None:
            self._on_change(reservation)
