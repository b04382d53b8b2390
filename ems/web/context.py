"""What every handler reaches: the portfolio, the store, the clock, the users, the re-plan trigger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from ems.config import Portfolio
    from ems.store import Store
    from ems.web.users import Users


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def shifted_clock(at: dt.datetime) -> Callable[[], dt.datetime]:
    """A clock that reads ``at`` now and runs on in real time (to look at a past run's store)."""
    offset = at - utc_now()
    return lambda: utc_now() + offset


@dataclass
class Console:
    """One per application, at ``request.app.state.console`` (``console(request)`` in a handler).

    ``replan_now`` is set when the console runs inside ``ems run --http``: it pokes the
    controller's scheduler directly. Without it a re-plan request is recorded in the store and
    the controller's scheduler picks it up at its next check (``ems.scheduler.request_replan``).
    """

    portfolio: Portfolio
    config_path: Path
    store: Store
    users: Users
    secret: bytes
    clock: Callable[[], dt.datetime] = utc_now
    replan_now: Callable[[], None] | None = None
    dispatch_store: Path | None = None  # the live dispatcher's SQLite file (riders, vehicle positions), read only
    bcp_state_dir: Path = Path("var/ems")  # where the operator's BCP switch is recorded (ems.bcp.mode.BcpModeStore)
    extras: dict[str, Any] = field(default_factory=dict)  # for pages that need more (job runners, caches)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.portfolio.portfolio.timezone)

    @property
    def settings(self):
        return self.portfolio.console

    def now(self) -> dt.datetime:
        return self.clock()

    def local(self, time: dt.datetime | None) -> dt.datetime | None:
        return time.astimezone(self.zone) if time is not None else None


def console(request) -> Console:
    """The application's Console, from any handler or dependency."""
    return request.app.state.console
