"""A set-point written to a battery by anyone but the controller is recorded and undone.

Another Modbus client (Debian's mbpoll, a separate process) writes a plain SunSpec set-point
of -50 kW (charge at the full 50 kW) into the twin's city-hall battery; the controller's next
poll records a ``foreign_write`` event naming the device, the value seen and the value
expected, and writes its own set-point back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess

import pytest

from drivers.api import Quality, Reading
from ems.control.foreign import ForeignWrite, find_foreign_writes
from tests.control_fixtures import SteppedRun

EVENING = dt.datetime(2026, 4, 15, 19, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def mbpoll_write(port: int, address: int, value: int) -> None:
    """One holding-register write by a process that is not the controller (PDU addressing)."""
    result = subprocess.run(
        [
            "mbpoll",
            "-m",
            "tcp",
            "-a",
            "1",
            "-0",
            "-1",
            "-t",
            "4",
            "-r",
            str(address),
            "-p",
            str(port),
            "127.0.0.1",
            "--",
            str(value),
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_foreign_sunspec_write_is_recorded_and_undone(twin_factory, mosquitto, tmp_path):
    run = SteppedRun(twin_factory, mosquitto, tmp_path / "store.sqlite", start=EVENING, horizon_hours=6)

    async def scenario():
        controller = await run.open_controller()
        try:
            await controller.cycle()
            expected = controller.written_kw["city_hall_bess"]
            device = run.twin.modbus_devices["city_hall_bess"]
            port = run.twin.servers["city_hall_bess"].port
            # 100 % of WChaMax (50 kW) as charge rate, in 0.1 % units; then the mode: charge
            await asyncio.to_thread(mbpoll_write, port, device.image.address(124, "InWRte"), 1000)
            await asyncio.to_thread(mbpoll_write, port, device.image.address(124, "StorCtl_Mod"), 1)
            hijacked_kw = run.battery("city_hall_bess").setpoint_kw
            await controller.poll()
            restored_kw = run.battery("city_hall_bess").setpoint_kw
            await controller.poll()  # the value read back is the controller's again: nothing new
            return expected, hijacked_kw, restored_kw
        finally:
            await run.close_controller()

    expected, hijacked_kw, restored_kw = asyncio.run(scenario())
    assert abs(expected + 50.0) > 5.0  # the evening plan is not a full charge: the write is a change
    assert hijacked_kw == pytest.approx(-50.0)  # the write reached the battery: Modbus TCP has no authentication
    assert restored_kw == pytest.approx(expected, abs=0.1)  # and the controller undid it within one poll
    from ems.store import Store

    store = Store(tmp_path / "store.sqlite")
    events = [
        (kind, message, json.loads(data))
        for _, kind, message, data in list(store.rows("events"))[1:]
        if kind == "foreign_write"
    ]
    reasserted = [
        row for row in list(store.rows("setpoints"))[1:] if row[1] == "city_hall_bess" and row[4] == "reassert"
    ]
    store.close()
    assert len(events) == 1, events
    _, message, data = events[0]
    assert data["device"] == "city_hall_bess"
    assert data["seen_kw"] == pytest.approx(-50.0, abs=0.1) and data["expected_kw"] == pytest.approx(expected)
    assert "city_hall_bess" in message and "-50.00 kW" in message
    assert len(reasserted) == 1 and reasserted[0][3] == pytest.approx(expected, abs=0.1)


def reading(device: str, setpoint_kw: float | None, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(
        device=device,
        time=dt.datetime(2026, 4, 15, 3, tzinfo=dt.UTC),
        quality=quality,
        power_kw=0.0,
        setpoint_kw=setpoint_kw,
    )


def test_only_watched_devices_written_before_the_poll_and_readable_are_judged():
    watched = {"bess": 0.5, "other": 0.5}
    readings = [
        reading("bess", -50.0),
        reading("other", 3.0),
        reading("charger", 9.0),
        reading("lost", 7.0, Quality.MISSING),
    ]
    expected = {"bess": 10.0, "other": 0.0, "charger": 0.0, "lost": 0.0}
    # 'other' was written by the controller during the poll: its reading may predate that write
    current = {**expected, "other": 3.0}
    assert find_foreign_writes(readings, expected, current, {**watched, "lost": 0.5}) == [
        ForeignWrite("bess", -50.0, 10.0)
    ]
    # within the tolerance (register resolution) nothing is reported
    assert find_foreign_writes([reading("bess", 10.3)], expected, expected, watched) == []


def test_a_write_still_waiting_for_its_answer_during_a_poll_is_not_foreign(twin_factory, mosquitto, tmp_path):
    """The re-plan's write and the poll overlap: the battery already holds the new value while
    the write waits for its answer. That is the controller's own write, not someone else's, and
    the poll must not put the old value back."""
    run = SteppedRun(twin_factory, mosquitto, tmp_path / "store.sqlite", start=EVENING, horizon_hours=6)

    async def scenario():
        controller = await run.open_controller()
        try:
            await controller.cycle()
            old_kw = controller.written_kw["city_hall_bess"]
            new_kw = old_kw + 10.0 if old_kw < 0 else old_kw - 10.0
            driver = controller.devices.drivers["city_hall_bess"]
            landed, answer = asyncio.Event(), asyncio.Event()
            real_write = driver.write

            async def slow_answer(setpoint_kw):  # the device takes the value; this answer comes late
                ack = await real_write(setpoint_kw)
                if not landed.is_set():
                    landed.set()
                    await asyncio.wait_for(answer.wait(), 30)
                return ack

            driver.write = slow_answer
            writing = asyncio.create_task(controller._write("city_hall_bess", new_kw, controller.clock(), "plan"))
            await landed.wait()
            await controller.poll()  # reads new_kw while the controller still records old_kw as written
            answer.set()
            await writing
            return new_kw, run.battery("city_hall_bess").setpoint_kw
        finally:
            await run.close_controller()

    new_kw, held_kw = asyncio.run(scenario())
    assert held_kw == pytest.approx(new_kw, abs=0.1)
    from ems.store import Store

    store = Store(tmp_path / "store.sqlite")
    kinds = [row[1] for row in list(store.rows("events"))[1:]]
    reasserted = [row for row in list(store.rows("setpoints"))[1:] if row[4] == "reassert"]
    store.close()
    assert "foreign_write" not in kinds and reasserted == []
