"""CloudWatch metric series: seasonal, noisy, with injected anomalies, computed from the seed (never stored).

Each series is a pure function of (seed, account, series, timestamp) on a 5-minute grid from ``start`` (14 days
before the anchor) to the anchor, and, when the sandbox date is not fixed, on to the real current time ("live").
Queries (GetMetricData, GetMetricStatistics, ListMetrics) aggregate it with AWS semantics (exact dimension match,
namespace honoured, periods aligned to the epoch, Sum/Average/Minimum/Maximum/SampleCount/pNN), merged with
anything the product put through PutMetricData (kept by moto).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import det
from ..settings import HOME_REGION
from .exceptions import InvalidParameterValue

RESOURCES = Path(__file__).resolve().parent / "resources"
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,2})?)$")
BASIC_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


def _epoch(when: dt.datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


@dataclass(frozen=True)
class Anomaly:
    """An injected anomaly: ``kind`` over [start, end) (end None: ongoing level shift)."""

    kind: str
    start: float
    end: float | None
    magnitude: float

    def applies(self, t: float) -> bool:
        return t >= self.start and (self.end is None or t < self.end)


@dataclass(frozen=True)
class Series:
    """One metric series of one account."""

    account: str
    key: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str
    kind: str
    base: float
    daily_amp: float
    weekend: float
    noise: float
    peak_hour: float
    anomalies: tuple[Anomaly, ...] = field(default=())

    def dims_dict(self) -> dict[str, str]:
        return dict(self.dimensions)


class Bucket:
    """Samples falling into one period."""

    __slots__ = ("sum", "count", "min", "max", "values")

    def __init__(self) -> None:
        self.sum = 0.0
        self.count = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.values: list[float] = []

    def add(self, value: float, count: float = 1.0, vmin: float | None = None, vmax: float | None = None,
            total: float | None = None) -> None:
        self.sum += value * count if total is None else total
        self.count += count
        self.min = min(self.min, value if vmin is None else vmin)
        self.max = max(self.max, value if vmax is None else vmax)
        if total is None:
            self.values.extend([value] * int(count))

    def stat(self, name: str) -> float | None:
        if name == "Sum":
            return self.sum
        if name == "SampleCount":
            return self.count
        if name == "Average":
            return self.sum / self.count if self.count else None
        if name == "Minimum":
            return self.min
        if name == "Maximum":
            return self.max
        match = PERCENTILE.match(name)
        if match and self.values:
            values = sorted(self.values)
            rank = float(match.group(1)) / 100.0 * (len(values) - 1)
            lo, hi = math.floor(rank), math.ceil(rank)
            return values[lo] + (values[hi] - values[lo]) * (rank - lo)
        return None


def check_stat(name: str) -> None:
    if name not in BASIC_STATS and not PERCENTILE.match(name or ""):
        raise InvalidParameterValue(f"The statistic {name} is not supported by the sandbox (supported: "
                                    f"{', '.join(BASIC_STATS)}, pNN)")


class MetricsModel:
    """The seeded CloudWatch series and their queries.

    :param world: the running world.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        self.data = json.loads((RESOURCES / "metrics.json").read_text(encoding="utf-8"))
        self.period = int(self.data["period"])
        settings = world.settings
        now = dt.datetime.now(dt.UTC)
        fixed = settings.fixed_date
        if fixed is None or fixed == now.date():
            self.anchor = math.floor(now.timestamp() / self.period) * self.period
            self.live = True
        else:
            self.anchor = _epoch(dt.datetime.combine(fixed + dt.timedelta(days=1), dt.time(0, 0), tzinfo=dt.UTC))
            self.live = False
        self.start = self.anchor - self.data["days"] * 86400
        self.account_ids = [a.id for a in world.plan.accounts[: settings.metrics_accounts]]
        # Anomalies go into accounts the product can read from the start (read role, active).
        self.anomaly_accounts = [a.id for a in world.plan.accounts[: settings.metrics_accounts]
                                 if a.read_role and a.status == "ACTIVE"]
        self._index = {a: i for i, a in enumerate(self.account_ids)}
        self._series: dict[str, list[Series]] = {}
        self._cache: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    # --- layout -----------------------------------------------------------------------------------------------------
    def end(self) -> float:
        """Last timestamp (exclusive) with data: the anchor, or now when live."""
        if self.live:
            return max(self.anchor, math.floor(dt.datetime.now(dt.UTC).timestamp() / self.period) * self.period + 1)
        return self.anchor

    def _minutes_before(self, lo_hi: list[int], *key: object) -> float:
        minutes = det.integer(lo_hi[0], lo_hi[1], self.world.settings.seed, "anomaly", *key)
        return self.anchor - (minutes - minutes % 5) * 60

    def _anomaly_plan(self) -> dict[tuple[str, str], Anomaly]:
        plan: dict[tuple[str, str], Anomaly] = {}
        specs = [dict(a) for a in self.data["anomalies"]]
        every = self.data["extra_every"]
        for i in range(every, len(self.anomaly_accounts), every):
            extra = dict(self.data["extra_kinds"][(i // every - 1) % len(self.data["extra_kinds"])])
            extra["account_index"] = i
            specs.append(extra)
        for spec in specs:
            if spec["account_index"] >= len(self.anomaly_accounts):
                continue
            account = self.anomaly_accounts[spec["account_index"]]
            start = self._minutes_before(spec["before_anchor_minutes"], account, spec["series"])
            end = None if spec["kind"] == "level_shift" else start + spec["minutes"] * 60
            plan[(account, spec["series"])] = Anomaly(spec["kind"], start, end, float(spec["magnitude"]))
        return plan

    def series(self, account_id: str) -> list[Series]:
        """The series of an account ([] for accounts without metrics)."""
        if account_id not in self._index:
            return []
        with self._lock:
            cached = self._series.get(account_id)
        if cached is not None:
            return cached
        seed = self.world.settings.seed
        anomalies = self._anomaly_plan()
        resources = {
            "instance-1": f"i-{det.hexid(17, seed, account_id, 'instance-1')}",
            "instance-2": f"i-{det.hexid(17, seed, account_id, 'instance-2')}",
            "db": f"db-{det.pick(['orders', 'users', 'billing', 'catalog', 'events'], seed, account_id, 'db')}-"
                  f"{det.hexid(4, seed, account_id, 'db')}",
            "lb": f"lb-{det.hexid(10, seed, account_id, 'lb')}",
        }
        out = []
        for spec in self.data["series"]:
            k = (seed, account_id, spec["key"])
            anomaly = anomalies.get((account_id, spec["key"]))
            out.append(Series(
                account=account_id, key=spec["key"], namespace=spec["namespace"], metric=spec["metric"],
                dimensions=((spec["dimension"], resources[spec["resource"]]),), unit=spec["unit"], kind=spec["kind"],
                base=det.between(*spec["base"], *k, "base"), daily_amp=det.between(*spec["daily_amp"], *k, "amp"),
                weekend=det.between(*spec["weekend"], *k, "weekend"), noise=det.between(*spec["noise"], *k, "noise"),
                peak_hour=det.between(*spec["peak_hour"], *k, "peak"), anomalies=(anomaly,) if anomaly else (),
            ))
        with self._lock:
            self._series[account_id] = out
        return out

    # --- values -----------------------------------------------------------------------------------------------------
    def value(self, s: Series, t: float) -> float:
        """The series' value at grid time ``t`` (epoch seconds)."""
        hours = (t % 86400) / 3600.0
        weekday = _utc(t).weekday()
        v = s.base * (s.weekend if weekday >= 5 else 1.0)
        v *= 1.0 + s.daily_amp * math.cos(2 * math.pi * (hours - s.peak_hour) / 24.0)
        v *= 1.0 + s.noise * det.gauss(self.world.settings.seed, s.account, s.key, int(t))
        for anomaly in s.anomalies:
            if anomaly.applies(t):
                v *= anomaly.magnitude
        if s.kind == "percent":
            return round(min(100.0, max(0.0, v)), 4)
        if s.kind == "count":
            return float(max(0, round(v)))
        return round(max(0.0, v), 1)

    def _grid(self, s: Series) -> list[float]:
        key = (s.account, s.key)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            n = int((self.anchor - self.start) // self.period)
            cached = [self.value(s, self.start + i * self.period) for i in range(n)]
            with self._lock:
                self._cache[key] = cached
        return cached

    def points(self, s: Series, t0: float, t1: float) -> list[tuple[float, float]]:
        """(timestamp, value) of the series in [t0, t1)."""
        lo = max(t0, self.start)
        hi = min(t1, self.end())
        if hi <= lo:
            return []
        first = math.ceil((lo - self.start) / self.period)
        grid = self._grid(s)
        out = []
        i = first
        while True:
            t = self.start + i * self.period
            if t >= hi:
                break
            out.append((t, grid[i] if i < len(grid) else self.value(s, t)))
            i += 1
        return out

    # --- queries ------------------------------------------------------------------------------------------------------
    def matching(self, account_id: str, region: str, namespace: str | None, metric: str | None,
                 dimensions: list[dict[str, str]] | None, exact: bool) -> list[Series]:
        """Series of the account and region matching the filters (exact: the dimension set must be equal, as for
        GetMetricData; otherwise a subset filter, as for ListMetrics)."""
        if region != HOME_REGION:
            return []
        wanted = {(d["Name"], d.get("Value")) for d in dimensions or []}
        out = []
        for s in self.series(account_id):
            if namespace and s.namespace != namespace or metric and s.metric != metric:
                continue
            have = set(s.dimensions)
            if exact and have != wanted:
                continue
            if not exact and not all((n, v) in have or (v is None and n in dict(have)) for n, v in wanted):
                continue
            out.append(s)
        return out

    def buckets(self, account_id: str, region: str, namespace: str, metric: str, dimensions: list[dict[str, str]],
                t0: float, t1: float, period: int, unit: str | None) -> dict[float, Bucket]:
        """Samples of one metric (seeded and PutMetricData) grouped into epoch-aligned periods within [t0, t1)."""
        out: dict[float, Bucket] = {}
        for s in self.matching(account_id, region, namespace, metric, dimensions, exact=True):
            if unit and unit != s.unit:
                continue
            for t, v in self.points(s, t0, t1):
                out.setdefault(t - t % period, Bucket()).add(v)
        for datum in self._moto_data(account_id, region, namespace, metric, dimensions, unit, t0, t1):
            t = _epoch(datum.timestamp)
            bucket = out.setdefault(t - t % period, Bucket())
            if hasattr(datum, "value"):
                bucket.add(float(datum.value))
            else:
                avg = datum.sum / datum.sample_count if datum.sample_count else 0.0
                bucket.add(avg, datum.sample_count, datum.min, datum.max, total=datum.sum)
        return out

    @staticmethod
    def _moto_data(account_id: str, region: str, namespace: str, metric: str, dimensions: list[dict[str, str]],
                   unit: str | None, t0: float, t1: float) -> list[Any]:
        from moto.cloudwatch.models import cloudwatch_backends

        if account_id not in cloudwatch_backends or region not in cloudwatch_backends[account_id].keys():
            return []
        wanted = sorted((d["Name"], d["Value"]) for d in dimensions or [])
        out = []
        for datum in cloudwatch_backends[account_id][region].metric_data:
            if datum.namespace != namespace or datum.name != metric or unit and datum.unit != unit:
                continue
            if sorted((d.name, d.value) for d in datum.dimensions) != wanted:
                continue
            if t0 <= _epoch(datum.timestamp) < t1:
                out.append(datum)
        return out

    def list_metrics(self, account_id: str, region: str, namespace: str | None, metric: str | None,
                     dimensions: list[dict[str, str]] | None) -> list[dict[str, Any]]:
        """ListMetrics rows: seeded series plus metrics put through PutMetricData (deduplicated)."""
        from moto.cloudwatch.models import cloudwatch_backends

        rows: dict[tuple, dict[str, Any]] = {}
        for s in self.matching(account_id, region, namespace, metric, dimensions, exact=False):
            rows[(s.namespace, s.metric, s.dimensions)] = {
                "Namespace": s.namespace, "MetricName": s.metric,
                "Dimensions": [{"Name": n, "Value": v} for n, v in s.dimensions]}
        if account_id in cloudwatch_backends and region in cloudwatch_backends[account_id].keys():
            wanted = [(d["Name"], d.get("Value")) for d in dimensions or []]
            for datum in cloudwatch_backends[account_id][region].metric_data:
                if namespace and datum.namespace != namespace or metric and datum.name != metric:
                    continue
                have = {(d.name, d.value) for d in datum.dimensions}
                names = {d.name for d in datum.dimensions}
                if not all((n, v) in have if v is not None else n in names for n, v in wanted):
                    continue
                dims = tuple(sorted(have))
                rows.setdefault((datum.namespace, datum.name, dims), {
                    "Namespace": datum.namespace, "MetricName": datum.name,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in dims]})
        return [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1], k[2]))]

    # --- description and truth -------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The metrics block of sandbox.json."""
        return {
            "region": HOME_REGION,
            "period_seconds": self.period,
            "start": _utc(self.start).isoformat(),
            "anchor": _utc(self.anchor).isoformat(),
            "live": self.live,
            "accounts": len(self.account_ids),
            "series": [{k: s[k] for k in ("key", "namespace", "metric", "dimension", "unit")}
                       for s in self.data["series"]],
        }

    def anomalies(self, accounts: list[str] | None = None) -> list[dict[str, Any]]:
        out = []
        for (account, key), anomaly in sorted(self._anomaly_plan().items(), key=lambda kv: (kv[1].start, kv[0])):
            if accounts is not None and account not in accounts:
                continue
            s = next(x for x in self.series(account) if x.key == key)
            out.append({
                "account": account, "region": HOME_REGION, "namespace": s.namespace, "metric": s.metric,
                "dimensions": s.dims_dict(), "series": key, "kind": anomaly.kind,
                "start": _utc(anomaly.start).isoformat(),
                "end": _utc(anomaly.end).isoformat() if anomaly.end is not None else None,
                "magnitude": anomaly.magnitude,
            })
        return out

    def truth(self, accounts: list[str] | None = None) -> dict[str, Any]:
        series = {
            a: [{"key": s.key, "namespace": s.namespace, "metric": s.metric, "dimensions": s.dims_dict(),
                 "unit": s.unit, "base": round(s.base, 4), "daily_amp": round(s.daily_amp, 4),
                 "weekend_factor": round(s.weekend, 4), "noise": round(s.noise, 4)} for s in self.series(a)]
            for a in self.account_ids if accounts is None or a in accounts
        }
        return {**self.describe(), "series_by_account": series, "anomalies": self.anomalies(accounts)}
