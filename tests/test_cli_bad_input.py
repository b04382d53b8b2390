"""Bad input on the command line: exit code 2, one line on stderr naming the file, key or flag,
no traceback, nothing written. Every case goes through the CLI's entry point (``ems.cli.main``,
what ``python -m ems`` runs); a few also through a real ``python -m ems`` process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ems.cli import main
from ems.config import ConfigError, parse_portfolio
from tests.config_fixtures import RAW, broken

REFERENCE = Path("config/arao.toml").read_text()


@pytest.fixture
def run_ems(capsys):
    """Run the CLI in-process as the console script does; (exit code, stderr) as a CompletedProcess."""

    def run(*argv: str) -> subprocess.CompletedProcess:
        try:
            code = main(list(argv))
        except SystemExit as stop:  # argparse ends this way
            code = stop.code
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, captured.out, captured.err)

    return run


def run_process(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ems", *argv], capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *names: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def _config(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "portfolio.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "latin-1":
        path.write_bytes(REFERENCE.replace('name = "', 'name = "Arao caf\u00e9 ', 1).encode("latin-1"))
    elif kind == "quoted number":
        path.write_text(REFERENCE.replace("import_limit_kw = 250.0", 'import_limit_kw = "120"', 1))
    elif kind == "infinite limit":
        path.write_text(REFERENCE.replace("import_limit_kw = 250.0", "import_limit_kw = inf", 1))
    return path


CONFIG_CASES = [
    ("directory", "is a directory"),
    ("latin-1", "not UTF-8 text (byte 0xe9"),
    ("quoted number", "grid_connections[id=city_hall_grid].import_limit_kw: expected a number, got '120'"),
    ("infinite limit", "grid_connections[id=city_hall_grid].import_limit_kw: inf is not a finite number"),
]


@pytest.mark.parametrize("kind,what", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_file_is_one_line_naming_the_file(run_ems, tmp_path, kind, what):
    config = _config(tmp_path, kind)
    out = tmp_path / "never"
    result = run_ems("plan", "--config", str(config), "--date", "2026-04-15", "--out", str(out))
    assert_one_line_error(result, str(config), what)
    assert not out.exists()


FLAG_CASES = [
    (["--date", "9999-12-31"], "argument --date: 9999-12-31 is outside the days a plan can cover"),
    (["--date", "2026-02-30"], "argument --date: '2026-02-30' is not a date"),
    (["--date", "2026-04-15", "--horizon-hours", "-5"], "argument --horizon-hours: -5 is outside 1..168 hours"),
    (["--date", "2026-04-15", "--horizon-hours", "0"], "argument --horizon-hours: 0 is outside 1..168 hours"),
    (["--date", "2026-04-15", "--horizon-hours", "200"], "argument --horizon-hours: 200 is outside 1..168 hours"),
]


@pytest.mark.parametrize("flags,what", FLAG_CASES, ids=[" ".join(c[0]) for c in FLAG_CASES])
def test_bad_plan_flag_is_one_line_naming_the_flag(run_ems, tmp_path, flags, what):
    out = tmp_path / "never"
    result = run_ems("plan", "--config", "config/arao.toml", "--out", str(out), *flags)
    assert_one_line_error(result, "ems plan", what)
    assert not out.exists()


def test_out_that_is_a_file_is_refused(run_ems, tmp_path):
    out = tmp_path / "a-file"
    out.write_text("keep me")
    result = run_ems("plan", "--config", "config/arao.toml", "--date", "2026-04-15", "--out", str(out))
    assert_one_line_error(result, "--out", str(out), "not a directory")
    assert out.read_text() == "keep me"


def test_request_log_that_is_not_utf8_names_the_file(run_ems, tmp_path):
    requests = tmp_path / "requests.csv"
    requests.write_bytes(
        b"request_id,time,origin_lat,origin_lon,dest_lat,dest_lon,passengers\n"
        b"r1,2026-04-15T08:00:00+09:00,32.98,130.44,32.99,130.45,1\xff\n"
    )
    out = tmp_path / "never"
    result = run_ems(
        "dispatch", "simulate", "--config", "config/arao.toml", "--requests", str(requests), "--out", str(out)
    )
    line = assert_one_line_error(result, str(requests), "not UTF-8 text")
    assert "None" not in line
    assert not out.exists()


def test_a_real_process_prints_one_line_and_exits_2(tmp_path):
    directory = _config(tmp_path, "directory")
    result = run_process("plan", "--config", str(directory), "--date", "2026-04-15", "--out", str(tmp_path / "never"))
    assert_one_line_error(result, str(directory), "is a directory")
    result = run_process(
        "plan",
        "--config",
        "config/arao.toml",
        "--date",
        "2026-04-15",
        "--horizon-hours",
        "-5",
        "--out",
        str(tmp_path / "never"),
    )
    assert_one_line_error(result, "ems plan", "argument --horizon-hours: -5 is outside 1..168 hours")
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(
    "value,key",
    [
        ("120", "grid_connections[id=city_hall_grid].import_limit_kw"),
        (True, "grid_connections[id=city_hall_grid].import_limit_kw"),
    ],
    ids=["string", "boolean"],
)
def test_quoted_or_boolean_number_is_refused(value, key):
    raw = broken(lambda r: r["grid_connections"][0].update(import_limit_kw=value))
    with pytest.raises(ConfigError, match=r"expected a number") as caught:
        parse_portfolio(raw, "config/broken.toml")
    assert key in str(caught.value)


def test_quoted_numbers_inside_a_series_and_nan_anywhere_are_refused():
    raw = broken(lambda r: r["tariffs"]["default"]["import_price_yen_per_kwh"].__setitem__(3, "22.5"))
    with pytest.raises(ConfigError, match=r"tariffs\.default\.import_price_yen_per_kwh\[3\]: expected a number"):
        parse_portfolio(raw, "config/broken.toml")
    raw = broken(lambda r: r["planning"].update(mip_gap=float("nan")))
    with pytest.raises(ConfigError, match=r"planning\.mip_gap: nan is not a finite number"):
        parse_portfolio(raw, "config/broken.toml")
    assert parse_portfolio(RAW, "config/arao.toml").grid_connections[0].import_limit_kw == 250.0
