"""The systemd units under deploy/systemd: verified by systemd itself, hardened, and starting
commands the ``ems`` parser accepts."""

from __future__ import annotations

import configparser
import contextlib
import io
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNITS = sorted((REPO / "deploy" / "systemd").glob("*.service"))
INSTALLED_EMS = "/opt/arao-ems/.venv/bin/ems"  # where docs/operations.md installs it
ANALYZE = shutil.which("systemd-analyze")


def service_section(path: Path) -> dict[str, list[str]]:
    """Each key of [Service] with all its values (systemd allows repeated keys)."""
    values: dict[str, list[str]] = {}
    section = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_the_three_services_are_shipped():
    assert {p.name for p in UNITS} == {"ems-run.service", "ems-dispatch.service", "ems-serve.service"}
    commands = {p.name: shlex.split(service_section(p)["ExecStart"][0])[1:3] for p in UNITS}
    assert commands == {
        "ems-run.service": ["run", "--config"],
        "ems-dispatch.service": ["dispatch", "serve"],
        "ems-serve.service": ["serve", "--config"],
    }


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_units_are_hardened_and_restart_on_failure(unit):
    service = service_section(unit)
    assert service["User"] == ["arao-ems"]  # never root
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["Restart"] == ["on-failure"]
    assert service["CapabilityBoundingSet"] == [""]
    assert service["EnvironmentFile"] == ["/etc/arao-ems/ems.env"]  # credentials beside, never in, the unit
    assert service["StateDirectory"] == ["arao-ems"]
    configparser.ConfigParser(strict=False).read_string(unit.read_text(encoding="utf-8"))  # well-formed INI


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_each_unit_starts_a_command_line_the_ems_parser_accepts(unit):
    from ems.cli import build_parser

    argv = shlex.split(service_section(unit)["ExecStart"][0])
    assert argv[0] == INSTALLED_EMS
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = build_parser().parse_args(argv[1:])
    except SystemExit:
        if argv[1:3] == ["dispatch", "serve"] and "invalid choice: 'serve'" in errors.getvalue():
            pytest.skip("`ems dispatch serve` is not in this tree yet (the live dispatcher service)")
        raise AssertionError(f"{unit.name}: ExecStart is refused by `ems`: {errors.getvalue()}") from None
    assert str(args.config) == "/etc/arao-ems/arao.toml"


@pytest.fixture
def units_with_this_ems(tmp_path) -> list[Path]:
    """The units with ExecStart pointing at this checkout's ``ems`` (verify checks the binary exists)."""
    ems = Path(sys.executable).with_name("ems")
    assert ems.exists(), f"{ems}: the venv's ems script (make install)"
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text(encoding="utf-8").replace(INSTALLED_EMS, str(ems)), encoding="utf-8")
        copies.append(copy)
    return copies


def test_systemd_analyze_verify_finds_nothing(units_with_this_ems):
    if ANALYZE is None:
        pytest.skip("systemd-analyze is not installed (Debian package 'systemd')")
    result = subprocess.run(
        [ANALYZE, "verify", *map(str, units_with_this_ems)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # unknown or misspelled keys are only warned about (exit 0): none may be there
    assert "Unknown key" not in result.stderr and "ignoring" not in result.stderr, result.stderr


def test_systemd_analyze_verify_catches_a_misspelled_key(tmp_path, units_with_this_ems):
    """The check above can fail: a typo in a hardening key is reported."""
    if ANALYZE is None:
        pytest.skip("systemd-analyze is not installed (Debian package 'systemd')")
    broken = tmp_path / "broken" / "ems-run.service"
    broken.parent.mkdir()
    broken.write_text(units_with_this_ems[0].read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    result = subprocess.run([ANALYZE, "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "Unknown key 'NoNewPrivilege'" in result.stderr


@pytest.mark.parametrize("index", range(len(UNITS)), ids=[p.name for p in UNITS])
def test_exposure_score_is_low(units_with_this_ems, index):
    """systemd's own rating of the sandbox: 0 (locked down) to 10 (unprotected); ours stay at 3 or below."""
    if ANALYZE is None:
        pytest.skip("systemd-analyze is not installed (Debian package 'systemd')")
    unit = units_with_this_ems[index]
    result = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--threshold=30", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr
    assert "Overall exposure level" in result.stdout
