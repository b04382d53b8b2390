"""The README's `make test` on a fresh machine: the system packages the tests need are
installed by the same make run, or it stops with the one command to run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PROBED = (
    "mosquitto_sub",
    "mbpoll",
    "victoria-metrics",
    "openssl",
    "chromium",
    "systemd-analyze",
)  # found through PATH by .ci/run


def test_make_test_installs_system_packages_before_pytest():
    dry_run = subprocess.run(["make", "-n", "test"], capture_output=True, text=True, check=True).stdout.splitlines()
    deps = next(i for i, line in enumerate(dry_run) if ".ci/run --system-deps" in line)
    tests = next(i for i, line in enumerate(dry_run) if "pytest" in line)
    assert deps < tests


def test_without_apt_or_root_it_stops_with_the_one_command(tmp_path):
    # a machine with none of the tools on PATH and neither apt-get nor sudo: nothing can be installed
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(
        ["bash", ".ci/run", "--system-deps"], capture_output=True, text=True, env={**os.environ, "PATH": str(bin_dir)}
    )
    assert result.returncode == 1
    command = result.stderr.strip().splitlines()[-1]
    prefix = "apt-get install -y " if os.getuid() == 0 else "sudo apt-get install -y "
    assert command.startswith(prefix)
    assert set(command.removeprefix(prefix).split()) >= {
        "mosquitto-clients",
        "mbpoll",
        "victoria-metrics",
        "openssl",
        "chromium",
        "systemd",
    }


def test_with_everything_present_it_installs_nothing():
    # `make test` ran `make system-deps` before this test, so everything is present by now
    assert all(shutil.which(tool) for tool in PROBED) and Path("/usr/sbin/mosquitto").exists()
    result = subprocess.run(["bash", ".ci/run", "--system-deps"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""


def test_ci_lints_before_testing_and_installs_the_tested_versions():
    steps = [line.strip() for line in Path(".ci/run").read_text().splitlines() if line.strip().startswith("make ")]
    assert steps == ["make lint", "make test"]
    install = subprocess.run(["make", "-n", "-B", "install"], capture_output=True, text=True, check=True).stdout
    assert "pip install --quiet -c constraints.txt -e '.[dev]'" in install
    pinned = [line for line in Path("constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert pinned and all("==" in line for line in pinned)
    assert not any(line.lower().startswith("arao-ems") for line in pinned)  # the project itself is not pinned
