"""The portfolio schema: the reference file loads; every bad file names the key and stops."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from ems.config import ConfigError, load_portfolio, parse_portfolio
from tests.config_fixtures import RAW, REFERENCE, broken


def test_reference_portfolio_loads():
    p = load_portfolio(REFERENCE)
    assert len(p.vehicles) == 12
    assert len(p.shelters) == 3
    assert {s.id for s in p.sites} >= {"city_hall", "cultural_centre", "taxi_depot"}
    assert sum(c.bidirectional for c in p.chargers if c.site == "taxi_depot") == 10


CASES = [
    (
        "negative capacity",
        lambda r: r["batteries"][0].update(capacity_kwh=-5),
        "batteries[id=city_hall_bess].capacity_kwh",
    ),
    ("typo in a key", lambda r: r["batteries"][0].update(capacity_kw=100), "batteries[id=city_hall_bess].capacity_kw"),
    ("missing key", lambda r: r["pv_arrays"][0].pop("capacity_kwp"), "pv_arrays[id=city_hall_pv].capacity_kwp"),
    (
        "wrong type",
        lambda r: r["grid_connections"][0].update(import_limit_kw="lots"),
        "grid_connections[id=city_hall_grid].import_limit_kw",
    ),
    ("unknown site", lambda r: r["loads"][0].update(site="moon_base"), "loads[id=city_hall_load].site"),
    ("unknown profile", lambda r: r["loads"][1].update(profile="nope"), "loads[id=cultural_centre_load].profile"),
    (
        "short tariff",
        lambda r: r["tariffs"]["default"].update(co2_kg_per_kwh=[0.4] * 24),
        "tariffs.default.co2_kg_per_kwh",
    ),
    ("unknown tariff", lambda r: r["sites"][0].update(tariff="gold"), "sites[id=city_hall].tariff"),
    ("duplicate id", lambda r: r["pv_arrays"][1].update(id="city_hall_pv"), "city_hall_pv"),
    (
        "unknown home charger",
        lambda r: r["vehicles"][0].update(home_charger="depot_c99"),
        "vehicles[id=taxi-01].home_charger",
    ),
    ("shared home charger", lambda r: r["vehicles"][1].update(home_charger="depot_c01"), "home_charger=depot_c01"),
    (
        "non-V2H shelter point",
        lambda r: r["shelters"][0].update(v2h_points=["depot_c01"]),
        "shelters[id=north_school_gym].v2h_points",
    ),
    (
        "soc window",
        lambda r: r["batteries"][1].update(soc_min_fraction=0.9, soc_max_fraction=0.5),
        "batteries[id=cultural_centre_bess]",
    ),
    ("bad step", lambda r: r["planning"].update(step_minutes=7), "planning.step_minutes"),
    (
        "unknown driver kind",
        lambda r: r["batteries"][0].update(driver={"kind": "carrier-pigeon"}),
        "batteries[id=city_hall_bess].driver",
    ),
    (
        "modbus without host",
        lambda r: r["batteries"][0].update(driver={"kind": "modbus"}),
        "batteries[id=city_hall_bess].driver.host",
    ),
    (
        "overlapping duties",
        lambda r: r["vehicles"][0].update(
            duties=[
                {"depart": "07:00:00", "return": "12:00:00", "distance_km": 10},
                {"depart": "11:00:00", "return": "13:00:00", "distance_km": 10},
            ]
        ),
        "vehicles[id=taxi-01].duties",
    ),
    (
        "duty beyond battery",
        lambda r: r["vehicles"][0]["duties"][0].update(distance_km=900),
        "vehicles[id=taxi-01].duties[0].distance_km",
    ),
    ("bad time zone", lambda r: r["portfolio"].update(timezone="Mars/Olympus"), "portfolio.timezone"),
    ("site without grid", lambda r: r["grid_connections"].pop(0), "sites[id=city_hall]"),
]


@pytest.mark.parametrize("name,edit,key", CASES, ids=[c[0] for c in CASES])
def test_bad_config_names_the_file_and_key(name, edit, key):
    with pytest.raises(ConfigError) as caught:
        parse_portfolio(broken(edit), "config/broken.toml")
    message = str(caught.value)
    assert "config/broken.toml" in message
    assert key in message, message


def test_toml_syntax_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[portfolio\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: \(syntax\)"):
        load_portfolio(bad)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_portfolio(tmp_path / "absent.toml")


def test_profile_from_csv(tmp_path):
    from ems.config import profile_values

    raw = copy.deepcopy(RAW)
    rows = "\n".join(f"2026-04-15T{h:02d}:{m:02d}:00+09:00,{h + m / 60:.3f}" for h in range(24) for m in (0, 30))
    (tmp_path / "load.csv").write_text("time,value\n" + rows + "\n")
    raw["profiles"]["measured"] = {"csv": "load.csv"}
    raw["loads"][0]["profile"] = "measured"
    portfolio = parse_portfolio(raw, tmp_path / "p.toml")
    values = profile_values(portfolio.profiles["measured"], tmp_path / "p.toml")
    assert values[0] == 0.0 and values[1] == 0.5 and values[47] == pytest.approx(23.5)


def test_missing_profile_csv_is_reported(tmp_path):
    raw = copy.deepcopy(RAW)
    raw["profiles"]["measured"] = {"csv": "absent.csv"}
    with pytest.raises(ConfigError, match=r"profiles\.measured\.csv"):
        parse_portfolio(raw, tmp_path / "p.toml")


def test_config_reference_doc_is_generated_from_the_schema():
    from ems.config.doc import render

    assert Path("docs/config.md").read_text() == render(), "regenerate: python -m ems.config.doc > docs/config.md"
