"""BCP drills started from the console: each one is ``ems bcp drill`` (and, when asked, ``ems bcp
resilience``) run as its own process in the background, so a long solve never holds up a page
and a crash of the solver never takes the console down.

A job writes into ``<root>/<id>/``: ``job.json`` (who, what, when, status; rewritten at each
step), the drill's own files (``bcp.json``, ``supply.csv``, ``reservation.json``,
``report.html``) and, with the resilience curve, ``resilience/``. The console reads them back,
so finished drills outlive a restart of ``ems serve``. One drill runs at a time: the solver
already takes what the machine has.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ems.bcp.outage import OutageError, load_outage

DRILL_STEPS = 5  # the "progress K/N" lines of `ems bcp drill --progress`
STATE_SOURCES = {
    "store": "the controller's store (latest good readings)",
    "config": "the config's initial state of charge",
}
RESILIENCE = ("--starts", "4", "--every-hours", "6", "--durations", "24", "72")  # a quick curve: 4 starts, 2 lengths
JOB_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$")
PROGRESS = re.compile(r"^progress (\d+)/(\d+): (.*)$")


class DrillRefused(ValueError):
    """The drill request cannot run as given; the message says which field and why."""


class DrillBusy(RuntimeError):
    """Another drill is still running."""


@dataclass
class DrillJob:
    id: str
    operator: str
    outage: str  # an outage file name under the config's outages/, or a spec
    outage_name: str
    state: str  # a key of STATE_SOURCES
    resilience: bool
    started: str  # ISO time, UTC
    status: str = "running"  # running, done, failed
    step: int = 0
    steps: int = DRILL_STEPS
    step_text: str = "starting"
    finished: str | None = None
    error: str = ""
    command: list[str] = field(default_factory=list)

    @property
    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        return min(0.99, max(0, self.step - 1) / self.steps)

    def as_dict(self) -> dict:
        return asdict(self) | {"progress": round(self.progress, 3)}


class DrillJobs:
    def __init__(
        self,
        config_path: Path,
        store_path: Path | None,
        root: Path,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ):
        self.clock = clock  # the console's (a past run's time under `ems serve --at`)
        self.config_path = Path(config_path)
        self.store_path = store_path
        self.root = Path(root)
        self._lock = threading.Lock()
        self._running: dict[str, subprocess.Popen] = {}

    # --- what can be drilled ------------------------------------------------------------------

    @property
    def outage_dir(self) -> Path:
        return self.config_path.parent / "outages"

    def outage_files(self) -> list[str]:
        return sorted(p.name for p in self.outage_dir.glob("*.toml")) if self.outage_dir.is_dir() else []

    def _outage_argument(self, outage: str) -> tuple[str, str]:
        """(argument for `ems bcp drill --outage`, the outage's name); DrillRefused if it is not usable."""
        from ems.config import load_portfolio

        outage = (outage or "").strip()
        if not outage:
            raise DrillRefused("outage: choose an outage file or type a spec 'start=...; hours=...; sites=...'")
        if outage in self.outage_files():
            argument = str(self.outage_dir / outage)
        elif "=" in outage and "/" not in outage and "\n" not in outage and len(outage) <= 500:
            argument = outage
        else:
            raise DrillRefused(
                f"outage: {outage[:80]!r} is neither a file of {self.outage_dir} "
                "nor a spec 'start=...; hours=...; sites=...'"
            )
        try:
            parsed = load_outage(argument)
            parsed.check_against(load_portfolio(self.config_path), "outage")
        except OutageError as error:
            raise DrillRefused(str(error)) from None
        return argument, parsed.name if argument != outage or parsed.name != "outage" else outage[:80]

    # --- jobs -----------------------------------------------------------------------------------

    def start(
        self, outage: str, state: str, operator: str, resilience: bool = False, now: dt.datetime | None = None
    ) -> DrillJob:
        if state not in STATE_SOURCES:
            raise DrillRefused(f"state: {state!r} is not one of {', '.join(STATE_SOURCES)}")
        argument, name = self._outage_argument(outage)
        with self._lock:
            if any(p.poll() is None for p in self._running.values()):
                raise DrillBusy("a drill is still running; wait for it to finish")
            now = now or self.clock()
            job_id = f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
            out = self.root / job_id
            out.mkdir(parents=True)
            command = [
                sys.executable,
                "-m",
                "ems",
                "bcp",
                "drill",
                "--config",
                str(self.config_path),
                "--outage",
                argument,
                "--out",
                str(out),
                "--progress",
            ]
            if state == "store" and self.store_path is not None:
                command += ["--store", str(self.store_path), "--as-of", now.isoformat()]
            elif state == "config":
                command += ["--no-store"]
            job = DrillJob(
                id=job_id,
                operator=operator,
                outage=outage.strip(),
                outage_name=name,
                state=state,
                resilience=resilience,
                started=now.isoformat(),
                command=command,
            )
            self._save(job)
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
                cwd=self.root,
            )
            self._running[job_id] = process
        threading.Thread(
            target=self._follow, args=(job, process, argument), name=f"drill-{job_id}", daemon=True
        ).start()
        return job

    def _follow(self, job: DrillJob, process: subprocess.Popen, outage_argument: str) -> None:
        assert process.stdout is not None and process.stderr is not None
        for line in process.stdout:
            match = PROGRESS.match(line.strip())
            if match:
                job.step, job.steps, job.step_text = (
                    int(match[1]),
                    int(match[2]) + (1 if job.resilience else 0),
                    match[3],
                )
                self._save(job)
        error = process.stderr.read()
        code = process.wait()
        if code == 0 and job.resilience:
            job.step, job.step_text = job.steps, "resilience curve: outages starting at 4 times of the day"
            self._save(job)
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ems",
                    "bcp",
                    "resilience",
                    "--config",
                    str(self.config_path),
                    "--outage",
                    outage_argument,
                    *RESILIENCE,
                    "--out",
                    str(self.root / job.id / "resilience"),
                ],
                capture_output=True,
                text=True,
                cwd=self.root,
            )
            code, error = result.returncode, result.stderr
        job.status = "done" if code == 0 else "failed"
        job.error = "" if code == 0 else (error.strip().splitlines() or [f"exit code {code}"])[-1][:500]
        job.step_text = "finished" if code == 0 else "failed"
        job.finished = self.clock().isoformat()
        self._save(job)
        with self._lock:
            self._running.pop(job.id, None)

    def _save(self, job: DrillJob) -> None:
        path = self.root / job.id / "job.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(job.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, path)

    def get(self, job_id: str) -> DrillJob | None:
        if not JOB_ID.match(job_id or ""):
            return None
        path = self.root / job_id / "job.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("progress", None)
        job = DrillJob(**data)
        if job.status == "running" and job.id not in self._running:
            job.status, job.error = "failed", "ems serve was restarted while this drill ran"
        return job

    def jobs(self) -> list[DrillJob]:
        if not self.root.is_dir():
            return []
        found = [self.get(p.name) for p in sorted(self.root.iterdir(), reverse=True) if p.is_dir()]
        return [j for j in found if j is not None]

    def wait(self, job_id: str, timeout_s: float) -> DrillJob | None:
        """Block until the job has finished (tests and the command line)."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job is None or job.status != "running":
                return job
            time.sleep(0.2)
        return self.get(job_id)

    def stop_all(self) -> None:
        with self._lock:
            for process in self._running.values():
                if process.poll() is None:
                    process.terminate()

    # --- results --------------------------------------------------------------------------------

    def result(self, job: DrillJob) -> dict:
        """The drill's figures for the page and the API: bcp.json, the supply per shelter, the
        reservation live BCP mode would publish, and the resilience curve if it was asked for."""
        out = self.root / job.id
        summary = json.loads((out / "bcp.json").read_text(encoding="utf-8"))
        supply: dict[str, dict[str, list]] = {}
        with (out / "supply.csv").open(encoding="utf-8") as file:
            for row in csv.DictReader(file):
                series = supply.setdefault(
                    row["shelter"],
                    {k: [] for k in ("time", "demand_kw", "served_kw", "pv_kw", "battery_kw", "vehicle_kw")},
                )
                series["time"].append(row["time"])
                for key in ("demand_kw", "served_kw", "pv_kw", "battery_kw", "vehicle_kw"):
                    series[key].append(float(row[key]))
        reservation = json.loads((out / "reservation.json").read_text(encoding="utf-8"))
        resilience = None
        if (out / "resilience" / "resilience.json").is_file():
            resilience = json.loads((out / "resilience" / "resilience.json").read_text(encoding="utf-8"))
        return {"summary": summary, "supply": supply, "reservation": reservation, "resilience": resilience}
