"""Per-account work cut into batches: a DAG maps one task over each batch, not over each account.

A mapped task is a process that imports the DAG file and the libraries before doing anything (about a CPU-second);
one per account made a run of 200 accounts take 4.5-5 times the library's own time (issue #18). At most
``max_batches`` tasks (the ``aws_api`` pool's slots, settings ``collection.max_mapped_tasks``) pay it once each,
while small runs keep one account per task, so that one account stays clearable from the grid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def batches(items: Sequence[T], max_batches: int, min_size: int = 1) -> list[list[T]]:
    """``items`` in order, cut into consecutive batches of equal size (the last may be smaller): at most
    ``max_batches`` of them, each of at least ``min_size`` items unless there are fewer items.

    :param items: what the tasks work on, e.g. accounts.
    :param max_batches: the most mapped tasks wanted (at least 1).
    :param min_size: the fewest items per batch (e.g. the threads a task keeps busy).
    """
    if not items:
        return []
    size = max(1, int(min_size), -(-len(items) // max(1, int(max_batches))))
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def batch_label(batch: Sequence[Mapping[str, Any]], key: str = "account_id", name: str | None = "name") -> str:
    """What the grid shows for a mapped task: ``<id> <name>`` for one account, ``<first>..<last> (n accounts)``.

    :param batch: the task's accounts (dicts).
    :param key: the id field.
    :param name: the name field shown beside a single id (None: the id only).
    """
    first, last = batch[0], batch[-1]
    if len(batch) == 1:
        shown = " ".join(str(first.get(name) or "").split())[:60] if name else ""  # one line, whatever the name
        return f"{first[key]} {shown}".strip()
    return f"{first[key]}..{last[key]} ({len(batch)} accounts)"


def each(items: Sequence[T], work: Callable[[T], R], describe: Callable[[T], str] = str
         ) -> tuple[list[R], list[str]]:
    """``work`` on every item, one after the other; an item that raises is logged and named among the failures,
    and the items after it are still worked on (one account's bug does not skip the rest of its batch).

    :param items: a batch.
    :param work: the per-item function.
    :param describe: how a failure names its item.
    :returns: (results of the items that did not raise, in order; ``"<item>: <error>"`` per item that did).
    """
    results: list[R] = []
    failures: list[str] = []
    for item in items:
        try:
            results.append(work(item))
        except Exception as exc:  # noqa: BLE001 - recorded, logged with its traceback, and raised by the caller
            log.exception("%s failed", describe(item))
            failures.append(f"{describe(item)}: {type(exc).__name__}: {exc}")
    return results, failures
