"""A controller against the digital twin while a charger, a battery and the broker are taken away
at random (seeded) times: shared by the test (a few hours) and the benchmark (a week)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from dataclasses import dataclass, field

from tests.control_fixtures import START, SteppedRun

SLOT_S = 1800  # one re-plan per 30-minute slot
POLL_S = 600  # polls between re-plans


@dataclass
class Fault:
    kind: str  # charger, battery, broker
    device: str
    first_slot: int
    slots: int


@dataclass
class FaultRunResult:
    slots: list[dt.datetime] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    energy_device: str = ""
    twin_net_kwh: float = 0.0
    recorded_kwh: float = 0.0


def draw_faults(portfolio, slots: int, seed: int, per_day: int = 1) -> list[Fault]:
    """One charger, one battery and one broker outage per simulated day, at random slots."""
    rng = random.Random(seed)
    batteries = sorted(b.id for b in portfolio.batteries if b.id != "city_hall_bess")  # city hall is the energy check
    chargers = sorted(c.id for c in portfolio.chargers)
    faults = []
    for day in range(max(1, slots * SLOT_S // 86400 * per_day)):
        span = min(slots, 48)
        base = day * 48
        for kind, pool, longest in (("charger", chargers, 6), ("battery", batteries, 6), ("broker", ["mosquitto"], 2)):
            first = base + rng.randrange(1, max(2, span - longest))
            faults.append(Fault(kind, rng.choice(pool), first, rng.randint(1, longest)))
    return faults


async def fault_run(run: SteppedRun, broker, slots: int, faults: list[Fault]) -> FaultRunResult:
    """Run ``slots`` re-plan slots with ``faults``; returns what the checks need (the store has the rest)."""
    controller = await run.open_controller()
    result = FaultRunResult(faults=faults, energy_device="city_hall_bess")
    bess = run.battery(result.energy_device)
    counters = (bess.energy.import_kwh, bess.energy.export_kwh)
    try:
        for slot in range(slots):
            await asyncio.to_thread(_apply_faults, run, broker, result.faults, slot)
            result.slots.append(run.clock.now())
            await controller.cycle(replan=True)
            for _ in range(SLOT_S // POLL_S - 1):
                await run.advance(POLL_S)
                await controller.poll()
                await controller.apply()
            await run.advance(POLL_S)
        await controller.poll()
        result.twin_net_kwh = (bess.energy.import_kwh - counters[0]) - (bess.energy.export_kwh - counters[1])
        power = run.store.series(result.energy_device, "power_kw", START - dt.timedelta(days=1))
        power = [(t, v) for t, v in power if t >= result.slots[0]]
        result.recorded_kwh = sum(v * (t - t0).total_seconds() / 3600 for (t0, _v0), (t, v) in zip(power, power[1:]))
    finally:
        await run.close_controller()
    return result


def _apply_faults(run: SteppedRun, broker, faults: list[Fault], slot: int) -> None:
    for fault in faults:
        if slot == fault.first_slot:
            _take_away(run, broker, fault)
        elif slot == fault.first_slot + fault.slots:
            _bring_back(run, broker, fault)


def _take_away(run, broker, fault: Fault) -> None:
    if fault.kind == "broker":
        broker.stop()
    elif fault.kind == "battery":
        run.runner.call(run.twin.servers[fault.device].stop)
    else:  # the charger drops off the network: it says offline as it goes
        run.twin.mqtt_devices[fault.device].stop()


def _bring_back(run, broker, fault: Fault) -> None:
    if fault.kind == "broker":
        broker.start()
    elif fault.kind == "battery":
        run.runner.call(run.twin.servers[fault.device].start)
    else:
        run.twin.mqtt_devices[fault.device].start()  # its birth message says online again


def slots_without_plan(store, slots: list[dt.datetime]) -> list[dt.datetime]:
    """Re-plan slots with neither a stored plan nor a recorded fallback or failure."""
    covered = {plan_time for plan_time in store.plan_times()}
    covered |= {event[0] for event in store.latest_events(("fallback", "replan-failed"), limit=10**6)}
    return [slot for slot in slots if slot not in covered]
