"""The collection's unit of work: what one small piece of AWS work is, what it produces, and how an account's
coverage is kept while its units run. Shared by the runner (runner.py) and the sources that add units of their own
(ssm_inventory.py); it imports neither, so they never import each other.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from include.awsgov.core.aws import AwsAccess

# When several units of one account/region/source fail, the most telling status is kept.
_SEVERITY = {"ok": 0, "stale": 1, "throttled_out": 1, "error": 2, "no_support_plan": 3, "not_enabled": 3,
             "not_delivered": 3, "not_covered": 3, "access_denied": 4}
_SCOPE = threading.local()
# Clients whose calls count towards the running unit (see counted_client); weak, so forgotten clients are freed.
_COUNTING: weakref.WeakSet[Any] = weakref.WeakSet()
# Coverage keeps the first line of an error, bounded: enough to act on, never a whole HTML error page.
MAX_ERROR_CHARS = 300


class Columns:
    """Rows of one table held as columns (field -> values, all of one length), for a unit that makes thousands of
    rows: a realistic Config snapshot has ~6,300 results, and a dict per row, then read back field by field to
    sort and convert to Arrow, cost more than reading the snapshot. A unit returns ``{table: [Columns(...)]}``, so
    the job's list of the table's rows holds the block as one element; the writer (runner._write_account) reads it
    a column at a time. :meth:`row` is one row as a dict, for the rare rows whose sort keys tie.

    :param columns: field -> values.
    """

    __slots__ = ("columns", "length")

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        self.columns = columns
        self.length = lengths.pop() if lengths else 0

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a dict (what the unit would have returned as a row)."""
        return {name: values[i] for name, values in self.columns.items()}


@dataclass
class Outcome:
    """What a unit produced: rows per table and follow-up units."""

    rows: dict[str, list[dict[str, Any] | Columns]] = field(default_factory=dict)
    follow: list[Unit] = field(default_factory=list)


@dataclass
class Unit:
    """One small piece of AWS work for one account, region and source.

    :param then: called with (status, exception) when the unit ends, returns more units.
    :param best_effort: failures are logged, not recorded as gaps, and calls are not counted (refresh requests).
    :param note: put before the error of a failure in the coverage row: what the failure leaves unread.
    """

    region: str
    source: str
    fn: Callable[[], Outcome]
    then: Callable[[str, BaseException | None], list[Unit]] | None = None
    best_effort: bool = False
    attempt: int = 0
    note: str = ""


@dataclass
class Job:
    """One account's work in a phase: its units, the rows gathered so far and its coverage per region/source."""

    account_id: str
    units: list[Unit]
    coverage_keys: list[tuple[str, str]]
    rows: dict[str, list[dict[str, Any] | Columns]] = field(default_factory=lambda: defaultdict(list))
    coverage: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pending: int = 0

    def __post_init__(self) -> None:
        for key in self.coverage_keys:
            self.coverage.setdefault(key, {"status": "ok", "error": "", "api_calls": 0})

    def record(self, region: str, source: str, status: str, error: str = "", calls: int = 0) -> None:
        """Add a unit's outcome to the coverage of its region and source (worst status wins)."""
        cov = self.coverage.setdefault((region, source), {"status": "ok", "error": "", "api_calls": 0})
        cov["api_calls"] += calls
        mine, theirs = (_SEVERITY[status], error), (_SEVERITY[cov["status"]], cov["error"])
        # Ties broken on the text so that a rerun with the same failures records the same row.
        if status != "ok" and (mine[0] > theirs[0] or (mine[0] == theirs[0] and (not theirs[1] or error < theirs[1]))):
            cov["status"], cov["error"] = status, error

    def coverage_rows(self) -> list[dict[str, Any]]:
        """Rows of ``tables.COVERAGE`` for this account."""
        return [{"account_id": self.account_id, "region": region, "source": source, **cov}
                for (region, source), cov in sorted(self.coverage.items())]


def error_text(exc: BaseException | None) -> str:
    """The error of a coverage row: the exception's first line, at most MAX_ERROR_CHARS characters.

    :param exc: the exception, or None for no error.
    """
    if exc is None:
        return ""
    text = str(exc).strip()
    return text.splitlines()[0][:MAX_ERROR_CHARS] if text else type(exc).__name__


def _count_call(**_: Any) -> None:
    counter = getattr(_SCOPE, "calls", None)
    if counter is not None:
        counter[0] += 1


def counted_client(access: AwsAccess, service: str, region: str, account_id: str | None) -> Any:
    """The client of ``access`` for this service, region and account, its calls counted towards the running unit."""
    client = access.client(service, region, account_id=account_id)
    # Once per client: botocore inspects the handler's signature on every register, even one that unique_id makes
    # a no-op (1 % of the collector's GIL time when done for every unit). A racing second register is such a no-op.
    if client not in _COUNTING:
        client.meta.events.register("before-call", _count_call, unique_id="awsgov-collection-unit-calls")
        _COUNTING.add(client)
    return client


def run_counted(fn: Callable[[], Outcome]) -> tuple[Outcome | None, BaseException | None, int]:
    """Call ``fn`` counting the AWS calls of counted clients in this thread: (outcome, exception, calls)."""
    _SCOPE.calls = [0]
    try:
        return fn(), None, _SCOPE.calls[0]
    except (ClientError, BotoCoreError) as exc:  # AWS failures are classified by the runner; bugs propagate
        return None, exc, _SCOPE.calls[0]
    finally:
        _SCOPE.calls = None
