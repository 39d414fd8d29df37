"""The kill switch: SIGUSR1, or the file `risk.kill_switch_file`, read every tick.

- SIGUSR1, or the file empty: every market (the action `risk.kill_switch_action` everywhere: unwind
  every position, or freeze every transaction).
- The file naming markets (`ETH`, or `ETH, BTC`: separated by commas, spaces or lines; any case):
  only those markets. Their positions unwind, or freeze, and no position opens there; the others
  trade on.
- The file naming a market the keeper does not trade, or unreadable: every market (a typo in an
  emergency must not leave a market trading), with `kill_switch.unknown_markets` / `.unreadable`
  at error level once per distinct content.

Each change of state is logged: `kill_switch.pulled` (warning: every market, or the markets named)
and `kill_switch.released` (info).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection
from pathlib import Path

from keeper.logs import get_logger

log = get_logger("keeper.kill_switch")
_SEPARATORS = re.compile(r"[,\s]+")

KillSwitchState = bool | frozenset[str]  # False: off; True: every market; a set: those markets only


class KillSwitch:
    """Called once per tick: the switch's state now (see the module docstring)."""

    def __init__(self, path: Path, markets: Collection[str], flag: threading.Event | None = None) -> None:
        self.path = Path(path)
        self.markets = {m.upper(): m for m in markets}  # a name in any case -> the configured spelling
        self.flag = flag or threading.Event()
        self.flag_source = "SIGUSR1"  # what the flag's `kill_switch.pulled` names (see `pull`)
        self._alarmed: str | None = None
        self._last: KillSwitchState = False

    def __call__(self) -> KillSwitchState:
        state = self._read()
        if state != self._last:
            self._last = state
            if state is False:
                log.info("kill_switch.released", path=str(self.path))
            else:
                log.warning("kill_switch.pulled", markets="every market" if state is True else sorted(state),
                            source=self.flag_source if self.flag.is_set() else str(self.path))
        return state

    def pull(self, source: str) -> None:
        """Pulls the switch for every market from inside the process (keeper simulate's run-end
        wind-down), logged with `source`: not as a SIGUSR1 nobody sent."""
        self.flag_source = source
        self.flag.set()

    def _read(self) -> KillSwitchState:
        if self.flag.is_set():
            return True
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            self._alarmed = None
            return False
        except OSError as exc:  # there but unreadable (a directory, permissions): fail safe
            self._alarm("kill_switch.unreadable", f"{exc.strerror or exc}", path=str(self.path))
            return True
        names = {n.upper(): n for n in _SEPARATORS.split(text) if n}
        unknown = sorted(given for upper, given in names.items() if upper not in self.markets)
        if unknown:
            self._alarm("kill_switch.unknown_markets", text, path=str(self.path), unknown=unknown,
                        markets=sorted(self.markets.values()), action="every market")
            return True
        self._alarmed = None  # a fixed file: the next bad one is told again
        return frozenset(self.markets[upper] for upper in names) if names else True

    def _alarm(self, event: str, key: str, **fields: object) -> None:
        if self._alarmed != key:
            self._alarmed = key
            log.error(event, **fields)
