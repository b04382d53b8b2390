"""Run many scenarios: in this process, on local worker processes, or on a Dask cluster.

Local cores and a remote cluster take the same path (a ``dask.distributed`` client); one worker
runs in this process without Dask. Every finished scenario is written at once to
``DIR/scenarios/<id>.json`` (atomically, with the night's fingerprint), so a sweep that crashes
is resumed by running it again: scenarios already stored for the same inputs are not redone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from simulations.scenarios import NightContext, Scenario, run_scenario


class ResultStore:
    """One JSON file per finished scenario, tagged with the night's fingerprint."""

    def __init__(self, directory: str | Path, fingerprint: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint

    def path(self, scenario_id: str) -> Path:
        return self.directory / (re.sub(r"[^A-Za-z0-9_.@+\-]", "_", scenario_id) + ".json")

    def load(self, scenario_id: str) -> dict | None:
        path = self.path(scenario_id)
        try:
            stored = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return stored["result"] if stored.get("fingerprint") == self.fingerprint else None

    def save(self, scenario_id: str, result: dict) -> None:
        path = self.path(scenario_id)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"fingerprint": self.fingerprint, "result": result}, indent=1))
        os.replace(partial, path)  # a crash never leaves half a result behind


class Progress:
    """A one-line progress bar on stderr (a line per tenth when stderr is not a terminal)."""

    def __init__(self, total: int, done: int, stream=None):
        self.total, self.done, self.stream = total, done, stream or sys.stderr
        self.started = time.perf_counter()
        self.fresh = 0
        self.last_tenth = -1

    def step(self) -> None:
        self.done += 1
        self.fresh += 1
        elapsed = time.perf_counter() - self.started
        rate = self.fresh / elapsed * 60 if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} scenarios  "
            f"{rate:.1f}/min  {left:.1f} min left"
        )
        if self.stream.isatty():
            self.stream.write("\r" + line + ("\n" if self.done == self.total else ""))
        elif self.done * 10 // max(self.total, 1) != self.last_tenth:
            self.last_tenth = self.done * 10 // max(self.total, 1)
            self.stream.write(line + "\n")
        self.stream.flush()


@dataclass
class SweepOutcome:
    results: dict[str, dict]
    computed: list[str]  # ids run this time (the rest were already stored)
    elapsed_s: float
    workers: int


def run_sweep(
    ctx: NightContext,
    scenarios: Sequence[Scenario],
    store: ResultStore,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    runner: Callable[[NightContext, Scenario], dict] = run_scenario,
) -> SweepOutcome:
    """Run every scenario not already in ``store``; return all results by id.

    ``scheduler``: a Dask scheduler address (``tcp://host:8786``). Otherwise ``workers`` local
    processes (default: all cores); 1 runs here, without Dask.
    """
    ids = [s.id for s in scenarios]
    if len(set(ids)) != len(ids):
        raise ValueError("scenario ids must be unique")
    results = {s.id: r for s in scenarios if (r := store.load(s.id)) is not None}
    todo = [s for s in scenarios if s.id not in results]
    bar = Progress(len(scenarios), len(results)) if progress else None
    started = time.perf_counter()
    computed: list[str] = []

    def finished(scenario_id: str, result: dict) -> None:
        store.save(scenario_id, result)
        results[scenario_id] = result
        computed.append(scenario_id)
        if bar:
            bar.step()

    workers = workers or os.cpu_count() or 1
    if todo and scheduler is None and workers == 1:
        for scenario in todo:
            finished(scenario.id, runner(ctx, scenario))
    elif todo:
        workers = _run_on_dask(ctx, todo, runner, finished, workers, scheduler)
    return SweepOutcome(
        results={i: results[i] for i in ids},
        computed=computed,
        elapsed_s=time.perf_counter() - started,
        workers=workers,
    )


def _run_on_dask(ctx, todo, runner, finished, workers: int, scheduler: str | None) -> int:
    from dask.distributed import Client, LocalCluster, as_completed

    # Dask logs each worker's start and stop at INFO; an operator wants the progress bar only.
    logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        workers = len(client.scheduler_info()["workers"]) or workers
        context = client.scatter(ctx, broadcast=True)
        futures = {client.submit(runner, context, s, key=f"scenario-{s.id}", pure=False): s.id for s in todo}
        for future in as_completed(futures):
            finished(futures[future], future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return workers
