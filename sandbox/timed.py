"""Timed state transitions (rule 17: like moto's ManagedState, driven by the clock, never by sleeping).

A TimedState is created with its phases, e.g. ``[("enqueued", 1.0), ("processing", 1.5), ("success", None)]``;
its status at any moment is a pure function of the time elapsed since it started.
"""

from __future__ import annotations

import time
from collections.abc import Sequence


class TimedState:
    """A status that moves through ``phases`` as time passes.

    :param phases: (status, seconds in that status) pairs; the last one's seconds is None (terminal).
    :param started: monotonic start time (default now).
    """

    def __init__(self, phases: Sequence[tuple[str, float | None]], started: float | None = None) -> None:
        if not phases or phases[-1][1] is not None:
            raise ValueError("the last phase must be terminal (seconds None)")
        self.phases = list(phases)
        self.started = time.monotonic() if started is None else started

    def elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started

    def status(self, now: float | None = None) -> str:
        left = self.elapsed(now)
        for status, seconds in self.phases:
            if seconds is None or left < seconds:
                return status
            left -= seconds
        return self.phases[-1][0]

    def reached(self, status: str, now: float | None = None) -> bool:
        """Whether the state is at or past ``status``."""
        names = [p[0] for p in self.phases]
        return names.index(self.status(now)) >= names.index(status)

    def time_of(self, status: str) -> float:
        """Monotonic time at which ``status`` begins."""
        at = self.started
        for name, seconds in self.phases:
            if name == status:
                return at
            at += seconds or 0.0
        raise KeyError(status)
