"""The call counter: every AWS API call that reaches the sandbox, per (account, service, action).

Control endpoints (``/_sandbox/*``) are not counted. Throttled calls are counted (they reached the sandbox) and
also tallied separately.
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

    def add(self, account: str, service: str, action: str, *, throttled: bool = False) -> None:
        key = (account, service, action)
        with self._lock:
            self._calls[key] += 1
            if throttled:
                self._throttled[key] += 1

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._throttled.clear()

    def snapshot(self) -> dict[str, Any]:
        """``{"total", "throttled", "calls": [{"account", "service", "action", "count", "throttled"}]}``."""
        with self._lock:
            calls = dict(self._calls)
            throttled = dict(self._throttled)
        rows = [
            {"account": a, "service": s, "action": x, "count": n, "throttled": throttled.get((a, s, x), 0)}
            for (a, s, x), n in sorted(calls.items())
        ]
        return {"total": sum(calls.values()), "throttled": sum(throttled.values()), "calls": rows}
