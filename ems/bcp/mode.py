"""BCP mode as an explicit, logged operator action that survives a restart.

``ems bcp activate`` and ``ems bcp deactivate`` write the mode to ``<state-dir>/bcp_mode.json``
(replaced atomically) and append each action to ``<state-dir>/bcp_mode.log`` (JSON lines,
never rewritten). The controller reads :meth:`BcpModeStore.current` at start-up and every
cycle; nothing here talks to a device. The clock is passed in.

An outage that has already ended, or that starts more than :data:`ACTIVATION_LEAD` ahead, is
most likely a wrong file or a wrong date: activating it needs ``force`` (``--force``), and the
record keeps why it was forced.
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
ACTIVATION_LEAD = dt.timedelta(days=7)  # an outage further ahead than this is not activated without force


class BcpModeError(RuntimeError):
    """An operator action that does not fit the current mode (e.g. activating twice)."""


class BcpActivationRefused(BcpModeError):
    """The outage is over, or too far ahead, and the activation was not forced."""


def activation_problem(outage: Outage, now: dt.datetime) -> str | None:
    """Why activating ``outage`` at ``now`` needs force, or None if it does not."""
    if outage.end <= now:
        return f"outage {outage.name!r} ended at {outage.end.isoformat()}, before now ({now.isoformat()})"
    if outage.start > now + ACTIVATION_LEAD:
        ahead_days = (outage.start - now) / dt.timedelta(days=1)
        return (
            f"outage {outage.name!r} starts at {outage.start.isoformat()}, {ahead_days:.1f} days ahead "
            f"(more than {ACTIVATION_LEAD.days} days)"
        )
    return None


class BcpMode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    active: bool
    since: dt.datetime
    operator: str
    reason: str = ""
    config: str | None = None
    outage: Outage | None = None
    forced: str = ""  # why the activation needed --force (empty: it did not)


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

    def activate(
        self, outage: Outage, config: str, operator: str, now: dt.datetime, reason: str = "", force: bool = False
    ) -> BcpMode:
        """Switch BCP mode on; refused (:class:`BcpActivationRefused`) for an outage that is over or
        starts more than a week ahead unless ``force``."""
        current = self.current()
        if current is not None and current.active:
            raise BcpModeError(f"BCP mode is already active since {current.since.isoformat()}; deactivate it first")
        if now.tzinfo is None:
            raise BcpModeError("the time of an operator action must be timezone-aware")
        problem = activation_problem(outage, now)
        if problem is not None and not force:
            raise BcpActivationRefused(
                f"{problem}: not activated; check the outage, or give --force to activate it anyway"
            )
        mode = BcpMode(
            active=True, since=now, operator=operator, reason=reason, config=config, outage=outage, forced=problem or ""
        )
        return self._record(mode, "activate")

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
