"""``ems forecast``: the commands as a user runs them."""

import argparse
import json

import pandas as pd

from ems.cli import COMMAND_MODULES
from ems.cli import forecast as forecast_command
from tests.forecasting_fixtures import ARAO, write_csv

JSON_KEYS = {"dataset", "model", "lead_h", "mae", "rmse", "nmae", "skill_vs_persistence", "skill_vs_seasonal_naive"}


def run(argv):
    parser = argparse.ArgumentParser(prog="ems")
    forecast_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_forecast_is_a_registered_command():
    assert "ems.cli.forecast" in COMMAND_MODULES


def test_load_backtest_prints_table_writes_json_and_plot(tmp_path, capsys):
    out_json, out_png = tmp_path / "bt.json", tmp_path / "bt.png"
    code = run(
        [
            "forecast",
            "backtest",
            "--kind",
            "load",
            "--data",
            "pmdarima:taylor",
            "--horizon",
            "48h",
            "--origin-every",
            "6h",
            "--by-hour",
            "--config",
            str(ARAO),
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "skill_vs_snaive" in printed and "P10-P90 coverage" in printed and "by local hour of day: 00h" in printed
    assert "by local hour of day (all leads)" in printed
    assert "beats persistence and seasonal naive everywhere: yes" in printed
    rows = json.loads(out_json.read_text())
    assert len(rows) == 3 * 8 and all(set(r) == JSON_KEYS for r in rows)
    assert {r["model"] for r in rows} == {"model", "persistence", "seasonal_naive"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pv_backtest_of_measured_csv_and_bad_file(tmp_path, capsys):
    # a measured-output CSV made from the model: 30 days of a steady 0.7 x clear sky
    from forecasting.portfolio import pv_system
    from forecasting.pv_model import clearsky_pv_kw
    from tests.forecasting_fixtures import arao

    portfolio = arao()
    index = pd.date_range("2026-04-01", periods=30 * 48, freq="30min", tz="Asia/Tokyo")
    output = 0.7 * clearsky_pv_kw(pv_system(portfolio, portfolio.pv_arrays[0]), index)
    path = tmp_path / "pv.csv"
    pd.DataFrame({"time": [t.isoformat() for t in index], "power_kw": output.to_numpy()}).to_csv(path, index=False)
    code = run(
        [
            "forecast",
            "backtest",
            "--kind",
            "pv",
            "--data",
            str(path),
            "--config",
            str(ARAO),
            "--plot",
            str(tmp_path / "pv.png"),
            "--json",
            str(tmp_path / "pv.json"),
        ]
    )
    assert code == 0
    model = [r for r in json.loads((tmp_path / "pv.json").read_text()) if r["model"] == "model"]
    assert max(r["mae"] for r in model) < 1e-6  # a steady sky is forecast exactly
    bad = write_csv(tmp_path / "bad.csv", "time,power\n2026-04-01T00:00,1\n")
    assert run(["forecast", "backtest", "--kind", "pv", "--data", str(bad), "--config", str(ARAO)]) == 2
    assert "bad.csv: column 'power': the name must end in its unit" in capsys.readouterr().err


def test_portfolio_command_writes_long_csv(tmp_path, capsys):
    weather = write_csv(
        tmp_path / "weather.csv",
        "time,cloud_cover_percent\n"
        + "\n".join(f"2026-04-15T{h:02d}:00,{50}" for h in range(24))
        + "\n"
        + "\n".join(f"2026-04-16T{h:02d}:00,50" for h in range(24)),
    )
    out = tmp_path / "forecast.csv"
    code = run(
        [
            "forecast",
            "portfolio",
            "--config",
            str(ARAO),
            "--start",
            "2026-04-15",
            "--weather",
            str(weather),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["time", "asset", "kind", "source", "p50_kw", "p10_kw", "p90_kw"]
    assert len(frame) == 11 * 96 and frame["time"].iloc[0] == "2026-04-15T00:00:00+09:00"
    assert "weather forecast" in capsys.readouterr().out


def test_load_csv_in_watts_is_caught_against_the_configured_peak(tmp_path, capsys):
    rows = "\n".join(f"2026-04-01T{h:02d}:00,{120000 + 1000 * h}" for h in range(24))
    path = write_csv(tmp_path / "meter.csv", "time,load_kw\n" + rows)
    code = run(
        [
            "forecast",
            "backtest",
            "--kind",
            "load",
            "--data",
            str(path),
            "--config",
            str(ARAO),
            "--asset",
            "city_hall_load",
        ]
    )
    assert code == 2
    assert (
        "meter.csv: row 25, column 'load_kw': 143000 kW is over 1.5 x the rating of 140 kW" in capsys.readouterr().err
    )
    code = run(
        ["forecast", "backtest", "--kind", "load", "--data", str(path), "--config", str(ARAO), "--asset", "nope"]
    )
    assert code == 2
    assert "--asset 'nope' is not a load id" in capsys.readouterr().err
