"""A pytest plugin: every botocore call the product makes in the suite is checked against botocore's service model.

botocore validates types, required members and minimum sizes before it sends a request; AWS checks more, and an
emulator may check nothing. This plugin adds the checks botocore leaves to the server, from the same model:

- ``max`` of strings (length), lists and maps (items), blobs (bytes), and ``min``/``max`` of numbers (page sizes
  such as ``MaxResults`` are numbers with a range);
- ``enum`` of strings (an unknown value is refused by AWS: ``ValidationException``);
- ``pattern`` of strings, matched against the whole value: AWS's models write them unanchored (STS's
  RoleSessionName is ``[\\w+=,.@-]*``) and the services refuse a value with one character outside them; patterns
  that Python's ``re`` cannot compile are counted, not checked.

Only calls made from product code (``include/`` or ``dags/`` on the caller's stack) are checked: tests may send
invalid input on purpose to see the sandbox refuse it. A violation fails the test phase (setup, call or teardown) in
which the call was made, naming the operation, the member path and the rule; the terminal summary lists how many
product calls of how many operations were checked.
"""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT_DIRS = (str(REPO / "include") + "/", str(REPO / "dags") + "/")
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Violation:
    """One parameter the service model does not allow."""

    service: str
    operation: str
    path: str
    rule: str

    def __str__(self) -> str:
        return f"{self.service}.{self.operation}: {self.path}: {self.rule}"


class Recorder:
    """Calls checked and violations found in this process."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.violations: list[Violation] = []
        self.uncompilable: Counter[str] = Counter()
        self.violation_count = 0  # reported by xdist workers
        self._patterns: dict[str, re.Pattern[str] | None] = {}

    def pattern(self, text: str) -> re.Pattern[str] | None:
        if text not in self._patterns:
            try:
                self._patterns[text] = re.compile(text)
            except re.error:
                self._patterns[text] = None
        if self._patterns[text] is None:
            self.uncompilable[text] += 1
        return self._patterns[text]


RECORDER = Recorder()


def check(value: Any, shape: Any, path: str, recorder: Recorder = RECORDER) -> Iterator[str]:
    """Yield ``"<path>: <rule>"`` for every model constraint that ``value`` breaks (botocore's own checks excluded).

    :param value: the parameter value as passed to the client.
    :param shape: its botocore shape.
    :param path: where it sits in the request, for the message.
    """
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                yield from check(member, shape.members[name], f"{path}.{name}", recorder)
    elif kind == "list" and isinstance(value, list | tuple):
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: {len(value)} items, the model allows at most {meta['max']}"
        for i, item in enumerate(value):
            yield from check(item, shape.member, f"{path}[{i}]", recorder)
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: {len(value)} entries, the model allows at most {meta['max']}"
        for key, item in value.items():
            yield from check(key, shape.key, f"{path}<key {key!r}>", recorder)
            yield from check(item, shape.value, f"{path}[{key!r}]", recorder)
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: {len(value)} characters, the model allows at most {meta['max']}"
        if shape.enum and value not in shape.enum:
            yield f"{path}: {value!r} is not one of {sorted(shape.enum)}"
        if "pattern" in meta:
            compiled = recorder.pattern(meta["pattern"])
            if compiled is not None and not compiled.fullmatch(value):
                yield f"{path}: {value!r} does not match the pattern {meta['pattern']!r}"
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float) \
            and not isinstance(value, bool):
        if "min" in meta and value < meta["min"]:
            yield f"{path}: {value} is below the minimum {meta['min']}"
        if "max" in meta and value > meta["max"]:
            yield f"{path}: {value} is above the maximum {meta['max']}"
    elif kind == "blob" and isinstance(value, bytes | bytearray | str):
        size = len(value.encode() if isinstance(value, str) else value)
        if "max" in meta and size > meta["max"]:
            yield f"{path}: {size} bytes, the model allows at most {meta['max']}"


def _from_product() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(PRODUCT_DIRS):
            return True
        frame = frame.f_back
    return False


def install(recorder: Recorder = RECORDER) -> None:
    """Wrap botocore's request building (every client, whatever session made it) with the checks above."""
    from botocore.client import BaseClient

    original = BaseClient._convert_to_request_dict
    if getattr(original, "_awsgov_contract", False):
        return

    def checked(self: Any, api_params: Any, operation_model: Any, *args: Any, **kwargs: Any) -> Any:
        if _from_product():
            service = operation_model.service_model.service_name
            found = []
            if operation_model.input_shape is not None:
                found = [Violation(service, operation_model.name, *issue.split(": ", 1))
                         for issue in check(api_params, operation_model.input_shape, operation_model.name, recorder)]
            with _LOCK:
                recorder.calls[(service, operation_model.name)] += 1
                recorder.violations.extend(found)
        return original(self, api_params, operation_model, *args, **kwargs)

    checked._awsgov_contract = True  # type: ignore[attr-defined]
    BaseClient._convert_to_request_dict = checked


def pytest_configure(config: pytest.Config) -> None:
    install()
    config._awsgov_contract_seen = 0  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    config = item.config
    with _LOCK:
        new = RECORDER.violations[config._awsgov_contract_seen:]  # type: ignore[attr-defined]
        config._awsgov_contract_seen = len(RECORDER.violations)  # type: ignore[attr-defined]
    if new and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = ("AWS API calls the service model refuses (tests/contract/botocore_contract.py):\n"
                           + "\n".join(f"  {v}" for v in new))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hand this process's counts to the controller (pytest_testnodedown)."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["awsgov_contract"] = {"calls": [[s, o, n] for (s, o), n in RECORDER.calls.items()],
                                     "violations": len(RECORDER.violations),
                                     "uncompilable": sorted(RECORDER.uncompilable)}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the xdist controller: add a worker's counts (its violations already failed its tests)."""
    data = getattr(node, "workeroutput", {}).get("awsgov_contract")
    if data:
        for service, operation, count in data["calls"]:
            RECORDER.calls[(service, operation)] += count
        RECORDER.violation_count += data["violations"]
        for text in data["uncompilable"]:
            RECORDER.uncompilable[text] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    calls = sum(RECORDER.calls.values())
    if not calls:
        return
    terminalreporter.write_line(
        f"botocore contract: {calls} product calls of {len(RECORDER.calls)} operations checked against the service "
        f"models, {len(RECORDER.violations) + RECORDER.violation_count} violations"
        + (f", {len(RECORDER.uncompilable)} model patterns not checkable in Python" if RECORDER.uncompilable else ""))
