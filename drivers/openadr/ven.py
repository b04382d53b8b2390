"""An OpenADR 2.0b VEN over ``openleadr``: registers with a VTN, polls for events
(``oadrDistributeEvent``), answers each with optIn or optOut as the caller decides, and offers
telemetry reports the VTN may request (``TELEMETRY_USAGE``, real power per resource, kW).

Protocol only: an event reaches the caller as a typed :class:`ReceivedEvent`; what it means for
the portfolio is decided above this floor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

OPT_IN, OPT_OUT = "optIn", "optOut"


class VenError(RuntimeError):
    """The VEN could not register with the VTN (unreachable, refused); the message says which."""


@dataclass(frozen=True)
class EventInterval:
    start: dt.datetime
    duration: dt.timedelta
    payload: float


@dataclass(frozen=True)
class ReceivedEvent:
    """One event as the VTN sent it (the first signal of an ``oadrEvent``)."""

    event_id: str
    modification_number: int
    market_context: str
    status: str  # far, near, active, completed, cancelled
    signal_name: str  # e.g. LOAD_DISPATCH, SIMPLE
    signal_type: str  # e.g. delta, setpoint, level
    intervals: tuple[EventInterval, ...]
    resource_ids: tuple[str, ...]  # eiTarget resourceIDs; empty: the whole VEN
    received: dt.datetime

    @property
    def start(self) -> dt.datetime:
        return self.intervals[0].start

    @property
    def end(self) -> dt.datetime:
        last = self.intervals[-1]
        return last.start + last.duration


def parse_event(event: dict, received: dt.datetime) -> ReceivedEvent:
    """openleadr's event dict to a :class:`ReceivedEvent` (intervals laid end to end from the
    active period's start where the VTN gave them no start of their own)."""
    descriptor = event["event_descriptor"]
    signals = event["event_signals"]
    signal = signals[0] if isinstance(signals, list) else signals["event_signals"][0]
    begin = event["active_period"]["dtstart"]
    intervals = []
    for interval in sorted(signal["intervals"], key=lambda i: i.get("uid", 0)):
        start = interval.get("dtstart") or begin
        intervals.append(EventInterval(start, interval["duration"], float(interval["signal_payload"])))
        begin = start + interval["duration"]
    targets = event.get("targets_by_type") or {}
    return ReceivedEvent(
        event_id=str(descriptor["event_id"]),
        modification_number=int(descriptor.get("modification_number", 0)),
        market_context=str(descriptor.get("market_context", "")),
        status=str(descriptor.get("event_status", "")),
        signal_name=str(signal["signal_name"]),
        signal_type=str(signal["signal_type"]),
        intervals=tuple(intervals),
        resource_ids=tuple(str(r) for r in targets.get("resource_id", [])),
        received=received,
    )


EventHandler = Callable[[ReceivedEvent], Awaitable[bool]]  # True: opt in


class Ven:
    """One VEN. ``on_event`` decides the opt; ``telemetry`` gives, per resource id, a function
    returning its current real power [kW] (positive: drawn from the grid)."""

    def __init__(
        self,
        ven_name: str,
        vtn_url: str,
        on_event: EventHandler,
        telemetry: dict[str, Callable[[], float | None]] | None = None,
        sampling_s: float = 60.0,
        cert_file: str | None = None,
        key_file: str | None = None,
        vtn_fingerprint: str | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ):
        from openleadr import OpenADRClient

        signed = cert_file is not None and key_file is not None
        self.client = OpenADRClient(
            ven_name=ven_name,
            vtn_url=vtn_url,
            cert=cert_file,
            key=key_file,
            vtn_fingerprint=vtn_fingerprint,
            disable_signature=not signed,
            show_fingerprint=False,
        )
        self.client.add_handler("on_event", self._on_event)
        self.client.add_handler("on_update_event", self._on_event)
        self.on_event, self.clock = on_event, clock
        for resource_id, read in sorted((telemetry or {}).items()):
            self.client.add_report(
                callback=self._reader(read),
                resource_id=resource_id,
                measurement="POWER_REAL",
                unit="W",
                scale="k",
                sampling_rate=dt.timedelta(seconds=sampling_s),
                report_duration=dt.timedelta(hours=1),
                report_specifier_id=f"telemetry-{resource_id}",
                r_id=f"{resource_id}-power",
            )
        self.responses: dict[str, str] = {}

    @staticmethod
    def _reader(read: Callable[[], float | None]) -> Callable[[], float]:
        def value() -> float:
            power = read()
            return float("nan") if power is None else float(power)

        return value

    async def _on_event(self, event: dict) -> str:
        received = parse_event(event, self.clock())
        opt_in = await self.on_event(received)
        self.responses[received.event_id] = OPT_IN if opt_in else OPT_OUT
        return self.responses[received.event_id]

    @property
    def ven_id(self) -> str | None:
        return self.client.ven_id

    async def start(self, timeout_s: float = 10.0) -> None:
        """Register, offer reports and start polling; :class:`VenError` if the VTN does not register us."""
        library_log = logging.getLogger("openleadr")
        level = library_log.level
        library_log.setLevel(logging.CRITICAL)  # its connection errors would repeat what VenError says
        try:
            await asyncio.wait_for(self.client.run(), timeout_s)
        except (TimeoutError, OSError) as error:
            raise VenError(
                f"VTN {self.client.vtn_url}: no registration ({error.__class__.__name__}: {error})"
            ) from None
        finally:
            library_log.setLevel(level)
        if not self.client.registration_id:
            raise VenError(f"VTN {self.client.vtn_url}: registration of {self.client.ven_name!r} refused or unanswered")

    async def stop(self) -> None:
        if self.client.client_session is not None:
            await self.client.stop()
