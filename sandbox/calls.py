"""The call counter: every AWS API call that reaches the sandbox, per (account, service, action).

Control endpoints (``/_sandbox/*``) are not counted. Throttled calls are counted (they reached the sandbox) and
also tallied separately: ``throttled`` counts both kinds, a row's ``quota_throttled`` those refused by the
request-rate quotas (quotas.py) rather than by the random ``throttle_rate`` fault.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class CallCounter:
    """Thread-safe counters of AWS calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str, str]] = Counter()
        self._throttled: Counter[tuple[str, str, str]] = Counter()
        self._quota: Counter[tuple[str, str, str]] = Counter()

    def add(self, account: str, service: str, action: str, *, throttled: bool = False, quota: bool = False) -> None:
        """Count one call.

        :param throttled: the call was answered with a throttling error.
        :param quota: ... because of a request-rate quota (implies throttled).
        """
        key = (account, service, action)
        with self._lock:
            self._calls[key] += 1
            if throttled or quota:
                self._throttled[key] += 1
            if quota:
                self._quota[key] += 1

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._throttled.clear()
            self._quota.clear()

    def snapshot(self) -> dict[str, Any]:
        """``{"total", "throttled", "calls": [{"account", "service", "action", "count", "throttled",
        "quota_throttled"}]}`` (the total refused by quotas: :meth:`quota_throttled`)."""
        with self._lock:
            calls = dict(self._calls)
            throttled = dict(self._throttled)
            quota = dict(self._quota)
        rows = [
            {"account": a, "service": s, "action": x, "count": n, "throttled": throttled.get((a, s, x), 0),
             "quota_throttled": quota.get((a, s, x), 0)}
            for (a, s, x), n in sorted(calls.items())
        ]
        return {"total": sum(calls.values()), "throttled": sum(throttled.values()), "calls": rows}

    def quota_throttled(self) -> int:
        """Calls refused by a request-rate quota since the last reset."""
        with self._lock:
            return sum(self._quota.values())
