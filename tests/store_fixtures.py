"""A VictoriaMetrics server (it accepts InfluxDB's v2 write API) started by the test."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

BINARY = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MetricsServer:
    """Start, stop and restart one server on a fixed port and data directory."""

    def __init__(self, data_dir: Path, extra_args: tuple[str, ...] = ()):
        self.data_dir, self.port, self.process = data_dir, free_port(), None
        self.extra_args = extra_args

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                BINARY,
                f"-storageDataPath={self.data_dir}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-search.latencyOffset=0s",
                "-retentionPeriod=100y",
                "-loggerLevel=ERROR",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=0.5).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("victoria-metrics did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def values(self, metric: str) -> list[float]:
        urllib.request.urlopen(f"{self.url}/internal/force_flush").read()
        body = urllib.request.urlopen(f"{self.url}/api/v1/export?match[]={metric}").read().decode()
        values: list[tuple[int, float]] = []
        for line in filter(None, body.splitlines()):
            series = json.loads(line)
            values += list(zip(series["timestamps"], series["values"]))
        return [v for _t, v in sorted(values)]


@pytest.fixture
def metrics_server(tmp_path):
    if not Path(BINARY).exists():
        pytest.fail("victoria-metrics is not installed: .ci/run installs the Debian package 'victoria-metrics'")
    server = MetricsServer(tmp_path / "vm")
    server.start()
    yield server
    server.stop()
