"""A small portfolio for the nightly tests: two sites, PV, loads, two batteries, one EV, one
DR event. It keeps the reference tariff's shape; solves take milliseconds."""

from __future__ import annotations

from pathlib import Path

PRICES = """
import_price_yen_per_kwh = [17.0, 16.8, 16.5, 16.2, 16.0, 16.0, 16.2, 16.5, 16.8, 17.2, 17.8, 18.5,
  19.5, 20.5, 21.0, 20.0, 17.0, 13.0, 10.0, 8.6, 8.2, 8.1, 8.0, 8.0, 8.0, 8.0, 8.0, 8.1, 8.3, 8.8, 10.5, 13.5,
  17.5, 22.0, 25.5, 27.0, 27.5, 27.0, 26.0, 24.5, 23.0, 21.5, 20.5, 19.5, 18.8, 18.2, 17.6, 17.2]
export_price_yen_per_kwh = [9.0, 8.8, 8.5, 8.2, 8.0, 8.0, 8.2, 8.5, 8.8, 9.2, 9.8, 10.5, 11.5, 12.5, 13.0, 12.0,
  9.0, 5.0, 2.0, 0.6, 0.2, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01, 0.1, 0.3, 0.8, 2.5, 5.5, 9.5, 14.0, 17.5, 19.0,
  19.5, 19.0, 18.0, 16.5, 15.0, 13.5, 12.5, 11.5, 10.8, 10.2, 9.6, 9.2]
co2_kg_per_kwh = [0.48, 0.48, 0.48, 0.48, 0.48, 0.48, 0.48, 0.48, 0.48, 0.48, 0.48, 0.48, 0.47, 0.46, 0.44, 0.40,
  0.35, 0.30, 0.26, 0.23, 0.21, 0.20, 0.20, 0.20, 0.20, 0.20, 0.20, 0.21, 0.23, 0.26, 0.30, 0.35, 0.40, 0.45, 0.48,
  0.50, 0.50, 0.50, 0.50, 0.50, 0.49, 0.49, 0.48, 0.48, 0.48, 0.48, 0.48, 0.48]
carbon_price_yen_per_kg = 3.0
"""

PROFILES = """
[profiles.pv]
values = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.012, 0.069, 0.147, 0.232, 0.316, 0.395, 0.468, 0.533, 0.589,
  0.633, 0.666, 0.687, 0.695, 0.690, 0.672, 0.642, 0.600, 0.547, 0.484, 0.412, 0.334, 0.251, 0.166, 0.086, 0.022,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]

[profiles.office]
values = [0.30, 0.30, 0.29, 0.29, 0.29, 0.29, 0.29, 0.29, 0.30, 0.30, 0.31, 0.33, 0.36, 0.40, 0.48, 0.60, 0.78,
  0.90, 0.95, 0.97, 0.98, 0.99, 1.00, 0.96, 0.85, 0.93, 0.98, 1.00, 0.99, 0.97, 0.95, 0.92, 0.88, 0.82, 0.72, 0.60,
  0.50, 0.44, 0.40, 0.37, 0.35, 0.34, 0.33, 0.32, 0.31, 0.31, 0.30, 0.30]
"""

SMALL_CONFIG = f"""
[portfolio]
name = "Small test portfolio"
latitude_deg = 32.987
longitude_deg = 130.433

[planning]
horizon_hours = 24

[[sites]]
id = "hall"
latitude_deg = 32.98
longitude_deg = 130.43

[[sites]]
id = "depot"
latitude_deg = 32.99
longitude_deg = 130.44

[[grid_connections]]
id = "hall_grid"
site = "hall"
import_limit_kw = 80.0
export_limit_kw = 10.0

[[grid_connections]]
id = "depot_grid"
site = "depot"
import_limit_kw = 30.0
export_limit_kw = 5.0

[[pv_arrays]]
id = "hall_pv"
site = "hall"
capacity_kwp = 20.0
profile = "pv"

[[loads]]
id = "hall_load"
site = "hall"
peak_kw = 40.0
profile = "office"

[[loads]]
id = "depot_load"
site = "depot"
peak_kw = 5.0
profile = "office"

[[batteries]]
id = "hall_bess"
site = "hall"
capacity_kwh = 40.0
charge_power_kw = 15.0
discharge_power_kw = 15.0
bcp_reserve_kwh = 8.0

[[batteries]]
id = "depot_bess"
site = "depot"
capacity_kwh = 10.0
charge_power_kw = 5.0
discharge_power_kw = 5.0

[[chargers]]
id = "depot_c1"
site = "depot"
charge_power_kw = 6.0
discharge_power_kw = 6.0

[[vehicles]]
id = "taxi-1"
battery_kwh = 40.0
consumption_kwh_per_km = 0.15
home_charger = "depot_c1"
v2g_allowed = true
duties = [{{ depart = 08:00:00, return = 16:00:00, distance_km = 90.0 }}]

[tariffs.default]
{PRICES}
{PROFILES}
"""

EVENING_EVENT = """
[event]
event_id = "evening-down"
direction = "down"
price_yen_per_kwh = 40.0
penalty_yen_per_kwh = 20.0

[active_period]
start = "17:00"
duration_minutes = 120

[[signal.intervals]]
uid = 0
duration_minutes = 120
requested_kw = 8.0

[targets]
site_ids = ["hall"]
"""


def write_small_portfolio(directory: Path) -> Path:
    """Write the small portfolio and its event file (in ``events/``); return the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "small.toml"
    config.write_text(SMALL_CONFIG)
    (directory / "events").mkdir(exist_ok=True)
    (directory / "events" / "evening-down.toml").write_text(EVENING_EVENT)
    return config
