"""The fleet publisher (``ems.fleet.publisher``) bound to an MQTT link."""

from __future__ import annotations

from collections.abc import Callable

from drivers.mqtt.link import MqttLink
from ems.fleet import Reservation
from ems.fleet.publisher import RESERVATIONS_TOPIC, FleetPublisher


def mqtt_fleet_publisher(link: MqttLink, on_change: Callable[[Reservation], None] | None = None) -> FleetPublisher:
    """States and plans published retained at QoS 1 on ``link``; reservations read from it."""
    publisher = FleetPublisher(lambda topic, payload, retain: link.publish(topic, payload, retain=retain), on_change)
    link.subscribe(RESERVATIONS_TOPIC, publisher.on_reservation)
    return publisher
