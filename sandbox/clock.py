"""The sandbox's "today": which day's Trusted Advisor and Config results are served.

Defaults to the real UTC date (following midnight), or to a date fixed at start (``--date``) or later
(``POST /_sandbox/date``).
"""

from __future__ import annotations

import datetime as dt
import threading


def parse_date(value: str | dt.date) -> dt.date:
    """Accept a ``YYYY-MM-DD`` string or a date; raise ValueError otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip())


class Clock:
    """The sandbox date, settable at run time.

    :param fixed: the date to serve; None follows the real UTC date.
    """

    def __init__(self, fixed: dt.date | None = None) -> None:
        self._lock = threading.Lock()
        self._fixed = fixed

    def today(self) -> dt.date:
        with self._lock:
            fixed = self._fixed
        return fixed or dt.datetime.now(dt.UTC).date()

    def set(self, value: str | dt.date | None) -> dt.date:
        """Fix the date (None returns to the real UTC date)."""
        with self._lock:
            self._fixed = parse_date(value) if value is not None else None
        return self.today()

    @property
    def fixed(self) -> bool:
        return self._fixed is not None

    @staticmethod
    def now() -> dt.datetime:
        """Real UTC time (for timed state transitions)."""
        return dt.datetime.now(dt.UTC)
