"""What the live dispatcher's own store tells the Fleet page: riders by status and each
vehicle's last committed position. Read only, through SQLite alone (no import of the
dispatcher); a missing file or table reads as "not reported"."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def dispatcher_view(path: Path | None) -> dict:
    if path is None or not Path(path).is_file():
        return {"available": False, "source": str(path) if path else None, "riders": {}, "vehicles": {}}
    try:
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error as error:
        return {"available": False, "source": str(path), "error": str(error), "riders": {}, "vehicles": {}}
    try:
        riders = dict(db.execute("SELECT status, COUNT(*) FROM dispatch_riders GROUP BY status").fetchall())
        vehicles = {}
        for vehicle_id, text in db.execute("SELECT vehicle_id, state FROM dispatch_vehicles").fetchall():
            try:
                state = json.loads(text)
                lat, lon = state["position"][:2]
            except (ValueError, KeyError, TypeError):
                continue
            vehicles[vehicle_id] = {
                "lat": float(lat),
                "lon": float(lon),
                "soc_kwh": state.get("soc_kwh"),
                "plugged": state.get("plugged"),
                "onboard": state.get("onboard"),
            }
    except sqlite3.Error as error:  # not (yet) a dispatcher's store
        return {"available": False, "source": str(path), "error": str(error), "riders": {}, "vehicles": {}}
    finally:
        db.close()
    return {"available": True, "source": str(path), "riders": riders, "vehicles": vehicles}
