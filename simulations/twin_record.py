"""The twin's own record of a run: what its vehicles and chargers really did.

``twin_vehicles.csv`` gets one row per vehicle every ``every_s`` simulated seconds (time, SoC,
position, plugged charger, km driven); ``twin_final.json`` is written when the twin stops:
every vehicle's last state, every charger's energy in and out, and the plans the twin took or
refused. ``ems city`` compares them with what the energy manager stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

VEHICLE_COLUMNS = ("time", "vehicle", "soc_kwh", "lat", "lon", "charger_id", "odometer_km", "on_route")
CHARGER_COLUMNS = ("time", "charger", "site", "v2h", "power_kw", "charged_kwh", "discharged_kwh", "vehicle")


class TwinRecorder:
    def __init__(self, twin, directory: Path, every_s: float = 300.0):
        self.twin = twin
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.every = dt.timedelta(seconds=every_s)
        self.next_row: dt.datetime | None = None
        self.last_row: dt.datetime | None = None
        self._file = (self.directory / "twin_vehicles.csv").open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(VEHICLE_COLUMNS)
        self._chargers_file = (self.directory / "twin_chargers.csv").open("w", newline="", encoding="utf-8")
        self._chargers_csv = csv.writer(self._chargers_file)
        self._chargers_csv.writerow(CHARGER_COLUMNS)
        self.sites = {c.id: (c.site, int(c.v2h)) for c in twin.portfolio.chargers}

    def record(self, now: dt.datetime) -> None:
        if self.next_row is not None and now < self.next_row:
            return
        self.next_row = now + self.every
        self.last_row = now
        with self.twin.lock:
            rows = [self._row(now, name, v) for name, v in self.twin.vehicles.items()]
            chargers = [
                (
                    now.isoformat(),
                    name,
                    *self.sites[name],
                    round(c.power_kw, 4),
                    round(c.energy.export_kwh, 4),
                    round(c.energy.import_kwh, 4),
                    c.vehicle.name if c.vehicle else "",
                )
                for name, c in self.twin.chargers.items()
            ]
        self._csv.writerows(rows)
        self._chargers_csv.writerows(chargers)
        self._file.flush()
        self._chargers_file.flush()

    def _row(self, now: dt.datetime, name: str, vehicle) -> tuple:
        lat, lon = vehicle.position if vehicle.position is not None else ("", "")
        return (
            now.isoformat(),
            name,
            round(vehicle.soc_kwh, 4),
            lat,
            lon,
            vehicle.charger_id or "",
            round(vehicle.odometer_km, 4),
            int(name in self.twin.followers),
        )

    def close(self, now: dt.datetime) -> None:
        if self.last_row != now:  # the last state always gets its row, once
            self.next_row = None
            self.record(now)
        self._file.close()
        self._chargers_file.close()
        twin = self.twin
        sites = {c.id: c.site for c in twin.portfolio.chargers}
        v2h = {c.id for c in twin.portfolio.chargers if c.v2h}
        with twin.lock:
            final = {
                "time": now.isoformat(),
                "vehicles": {
                    name: {
                        "soc_kwh": v.soc_kwh,
                        "position": list(v.position) if v.position else None,
                        "charger_id": v.charger_id,
                        "odometer_km": v.odometer_km,
                        "on_route": name in twin.followers,
                    }
                    for name, v in twin.vehicles.items()
                },
                # energy counters in the bus's sign: import = into the site (discharging), export = charging
                "chargers": {
                    name: {
                        "site": sites[name],
                        "v2h": name in v2h,
                        "charged_kwh": c.energy.export_kwh,
                        "discharged_kwh": c.energy.import_kwh,
                        "setpoint_kw": c.setpoint_kw,
                        "power_kw": c.power_kw,
                    }
                    for name, c in twin.chargers.items()
                },
                "plans_received": twin.plans_received,
                "plans_rejected": [{"topic": t, "reason": r} for t, r in twin.plans_rejected],
            }
        (self.directory / "twin_final.json").write_text(json.dumps(final, indent=1))
