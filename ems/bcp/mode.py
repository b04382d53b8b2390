"""BCP mode as an explicit, logged operator action that survives a restart.

``ems bcp activate`` and ``ems bcp deactivate`` write the mode to ``<state-dir>/bcp_mode.json``
(replaced atomically) and append each action to ``<state-dir>/bcp_mode.log`` (JSON lines,
never rewritten). The controller reads :meth:`BcpModeStore.current` at start-up and every
cycle; nothing here talks to a device. The clock is passed in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ems.bcp.outage import Outage

MODE_FILE = "bcp_mode.json"
LOG_FILE = "bcp_mode.log"


class BcpModeError(RuntimeError):
    """An operator action that does not fit the current mode (e.g. activating twice)."""


class BcpMode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    active: bool
    since: dt.datetime
    operator: str
    reason: str = ""
    config: str | None = None
    outage: Outage | None = None


class BcpModeStore:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    @property
    def mode_path(self) -> Path:
        return self.directory / MODE_FILE

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    def current(self) -> BcpMode | None:
        """The last recorded mode, or None if BCP mode was never switched on here."""
        if not self.mode_path.exists():
            return None
        try:
            return BcpMode.model_validate_json(self.mode_path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise BcpModeError(f"{self.mode_path}: unreadable BCP mode record: {error}") from None

    def is_active(self) -> bool:
        mode = self.current()
        return mode is not None and mode.active

    def activate(self, outage: Outage, config: str, operator: str, now: dt.datetime, reason: str = "") -> BcpMode:
        if self.is_active():
            raise BcpModeError(f"BCP mode is already active since {self.current().since.isoformat()}; deactivate it first")
        return self._record(BcpMode(active=True, since=now, operator=operator, reason=reason, config=config, outage=outage), "activate")

    def deactivate(self, operator: str, now: dt.datetime, reason: str = "") -> BcpMode:
        if not self.is_active():
            raise BcpModeError("BCP mode is not active")
        return self._record(BcpMode(active=False, since=now, operator=operator, reason=reason), "deactivate")

    def log(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _record(self, mode: BcpMode, action: str) -> BcpMode:
        if mode.since.tzinfo is None:
            raise BcpModeError("the time of an operator action must be timezone-aware")
        self.directory.mkdir(parents=True, exist_ok=True)
        entry = {"action": action, **json.loads(mode.model_dump_json())}
        with self.log_path.open("a", encoding="utf-8") as log:  # the log first: an action is never lost
            log.write(json.dumps(entry, ensure_ascii=False) + "\n")
            log.flush()
            os.fsync(log.fileno())
        temporary = self.mode_path.with_suffix(".tmp")
        temporary.write_text(mode.model_dump_json(indent=2), encoding="utf-8")
        os.replace(temporary, self.mode_path)
        return mode
