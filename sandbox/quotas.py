"""Request-rate quotas: a token bucket per (account, region, service, operation), as AWS throttles API calls.

The rates and bursts, and where each number comes from, are data (``resources/quotas.json``, rendered in
docs/quotas.md). A throttled call is answered with the service's own throttling error (code and HTTP status from
the botocore service model, see :func:`throttle_error`). On by default; ``scale`` multiplies every rate and burst
(``0`` switches the model off) for tests and benches that measure something else:

    GET    /_sandbox/quotas            {"enabled", "scale", "default", "services": {...}, "throttling": {...}}
    POST   /_sandbox/quotas            {"scale": 0.5} / {"enabled": false}; refills every bucket
    GET    /_sandbox/quotas/buckets    calls each bucket admitted and refused since it was last refilled
    DELETE /_sandbox/quotas/buckets    refill every bucket (a bench starting from rest)

A bucket starts full (``burst`` tokens), gains ``rate`` tokens a second up to ``burst``; a call takes one token or,
when none is left, is throttled without taking any. The random ``throttle_rate`` fault (faults.py) is separate and
is decided first. Each bucket also counts the calls it admitted and refused (:meth:`QuotaModel.buckets`), so that a
bench can compute the least time the quotas allow for the calls a run made, whichever processes made them; the counts
go with the buckets (refill, configure).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import AwsError

RESOURCE = Path(__file__).resolve().parent / "resources" / "quotas.json"


@cache
def table() -> dict[str, Any]:
    """The quota table as shipped (``resources/quotas.json``)."""
    return json.loads(RESOURCE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Quota:
    """One operation's modelled rate.

    :param rate: sustained requests per second.
    :param burst: bucket size (requests that may arrive at once after a pause).
    :param kind: ``published`` or ``assumption``.
    :param source: where the number comes from, or why it was assumed.
    """

    rate: float
    burst: float
    kind: str
    source: str


UNLIMITED = Quota(rate=float("inf"), burst=float("inf"), kind="published", source="")


def quota_for(service: str, operation: str) -> Quota:
    """The modelled quota of ``service:operation`` (botocore service name, API operation name).

    :param service: e.g. ``config``.
    :param operation: e.g. ``GetAggregateComplianceDetailsByConfigRule``.
    """
    data = table()
    entry = data["services"].get(service, {})
    if entry.get("unlimited"):
        return Quota(UNLIMITED.rate, UNLIMITED.burst, "published", entry.get("source", ""))
    spec = entry.get("operations", {}).get(operation) or entry.get("default") or data["default"]
    return Quota(float(spec["rate"]), float(spec["burst"]), spec["kind"], spec["source"])


def throttle_error(service: str, protocol: str) -> AwsError:
    """The error ``service`` answers a throttled request with, over ``protocol``.

    :param service: botocore service name.
    :param protocol: wire protocol of the request (sandbox.errors constants).
    """
    throttling = table()["throttling"]
    spec = throttling["services"].get(service) or throttling["default_by_protocol"][protocol]
    return AwsError(spec["message"], code=spec["code"], status=int(spec["status"]))


class QuotaModel:
    """Token buckets for every (account, region, service, operation) seen; thread-safe.

    :param scale: multiplies every rate and burst; 0 (or ``enabled=False``) lets every call through.
    :param clock: monotonic seconds (tests pass a fake).
    """

    def __init__(self, scale: float = 1.0, clock: Any = time.monotonic) -> None:
        if scale < 0:
            raise ValueError("quota scale must be >= 0")
        self._lock = threading.Lock()
        self._clock = clock
        # key -> [tokens, last refill time, calls admitted, calls refused]: one dict lookup per call for both.
        self._buckets: dict[tuple[str, str, str, str], list[float]] = {}
        self._quotas: dict[tuple[str, str], Quota] = {}
        self.scale = float(scale)
        self.enabled = True

    @property
    def active(self) -> bool:
        return self.enabled and self.scale > 0

    def configure(self, *, scale: float | None = None, enabled: bool | None = None) -> dict[str, Any]:
        """Change the scale or switch the model on/off; every bucket starts full again, its counts at zero.

        :param scale: new scale (>= 0).
        :param enabled: False lets every call through.
        """
        with self._lock:
            if scale is not None:
                scale = float(scale)
                if scale < 0:
                    raise ValueError("quota scale must be >= 0")
                self.scale = scale
            if enabled is not None:
                self.enabled = bool(enabled)
            self._buckets.clear()
        return self.describe()

    def refill(self) -> None:
        """Empty the bucket table: every bucket starts full at its next call, its counts at zero."""
        with self._lock:
            self._buckets.clear()

    def _quota(self, service: str, operation: str) -> Quota:
        key = (service, operation)
        quota = self._quotas.get(key)
        if quota is None:
            quota = self._quotas[key] = quota_for(service, operation)
        return quota

    def admit(self, account: str, region: str, service: str, operation: str) -> bool:
        """Take a token for one call; False if the call must be throttled.

        :param account: the calling account.
        :param region: the region the call is signed for.
        :param service: botocore service name.
        :param operation: API operation name.
        """
        if not self.active:
            return True
        quota = self._quota(service, operation)
        if quota.rate == float("inf"):
            return True
        rate = quota.rate * self.scale
        burst = max(1.0, quota.burst * self.scale)
        key = (account, region, service, operation)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [burst, now, 0, 0]
            else:
                bucket[0] = min(burst, bucket[0] + (now - bucket[1]) * rate)
                bucket[1] = now
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                bucket[2] += 1
                return True
            bucket[3] += 1
            return False

    def buckets(self) -> list[dict[str, Any]]:
        """Every bucket used since the last refill: ``{"account", "region", "service", "operation", "admitted",
        "throttled"}``, sorted. Calls of unthrottled services (no bucket) and calls made while the model is off are
        not in it; nor are calls refused by the ``throttle_rate`` fault, which never reach a bucket."""
        with self._lock:
            counts = [(key, int(b[2]), int(b[3])) for key, b in self._buckets.items()]
        return [{"account": a, "region": r, "service": s, "operation": o, "admitted": n, "throttled": t}
                for (a, r, s, o), n, t in sorted(counts)]

    def describe(self) -> dict[str, Any]:
        """The model in force: switch, scale and the whole table (rates before scaling)."""
        data = table()
        return {"enabled": self.enabled, "scale": self.scale, "active": self.active, "default": data["default"],
                "services": data["services"], "throttling": data["throttling"]}


def product_rows() -> list[dict[str, Any]]:
    """One row per operation the product calls: service, operation, rate, burst, kind, source and the throttling
    answer (code, HTTP status) -- the table of docs/quotas.md."""
    from .errors import JSON, QUERY, REST_JSON, REST_XML

    protocols = {"query": QUERY, "json": JSON, "rest-json": REST_JSON, "rest-xml": REST_XML,
                 "smithy-rpc-v2-cbor": "smithy-rpc-v2-cbor"}
    rows = []
    for service, operations in sorted(table()["product_calls"].items()):
        if service.startswith("_"):
            continue
        protocol = protocols[_protocol(service)]
        error = throttle_error(service, protocol)
        for operation in operations:
            quota = quota_for(service, operation)
            rows.append({"service": service, "operation": operation, "rate": quota.rate, "burst": quota.burst,
                         "kind": quota.kind, "source": quota.source, "code": error.code, "status": error.status})
    return rows


def _protocol(service: str) -> str:
    """The wire protocol botocore speaks to ``service`` (its service model's ``protocol``)."""
    return str(_botocore().get_service_model(service).protocol)


@cache
def _botocore() -> Any:
    import botocore.session

    return botocore.session.get_session()


def markdown() -> str:
    """docs/quotas.md's table (one line per product operation, rates before any scaling) and its numbered
    sources."""

    def number(value: float) -> str:
        return "unlimited" if value == float("inf") else f"{value:g}"

    sources: list[str] = []
    lines = ["| service | operation | rate (/s) | burst | kind | throttled with | source |",
             "|---|---|---|---|---|---|---|"]
    for r in product_rows():
        if r["source"] not in sources:
            sources.append(r["source"])
        lines.append(f"| {r['service']} | {r['operation']} | {number(r['rate'])} | {number(r['burst'])} | "
                     f"{r['kind']} | `{r['code']}` {r['status']} | [{sources.index(r['source']) + 1}] |")
    lines.append("")
    lines += [f"{i}. {source}" for i, source in enumerate(sources, 1)]
    return "\n".join(lines) + "\n"
