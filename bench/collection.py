"""Benchmark of the daily collection against the sandbox: API calls per account, wall time against the latency and
quota bounds, rows against the sandbox's truth, memory.

Each case (size x profile x delegated administrators) runs in a child process that starts its own sandbox, runs one
whole collection (``runner.collect_org``: accounts, organization-level reads, every account, run row) into a
temporary store, and reports:

- API calls (the collector's count and the sandbox's count), per account, and by operation;
- wall time; the latency bound ``calls x latency / workers`` and its ratio (None at ``--latency-ms 0``); the quota
  bound: the least time the sandbox's modelled request-rate quotas allow for the calls made (each token bucket --
  account x region x operation -- starts full with its burst and refills at its rate, so a bucket that served ``n``
  calls needs at least ``(n - burst) / rate`` seconds; buckets run in parallel, the bound is the slowest one) and
  the ratio of wall time to it; the same bound from the calls the sandbox's buckets admitted
  (``GET /_sandbox/quotas/buckets``, :func:`sandbox_quota_bound`: a retry of a throttled call is not an admitted
  call), and whether every bucket's count is the client's;
- rows against the sandbox's truth (``GET /_sandbox/truth``, read in slices of accounts): Config evaluations, GuardDuty
  and Macie open findings, SSM inventory applications -- lost, duplicated, unexpected -- and coverage gaps against the
  seeded ones (accounts without a Config delivery, without a read role, GuardDuty/Macie off or not an enabled
  member);
- peak RSS; server and collector CPU, and the bare-call floor (see :func:`best_ratio`).

Figures are measured; nothing is extrapolated here. ``--quota-scale 0`` switches the quotas off (the quota bound is
then not computed).

    .venv/bin/python bench/collection.py [--sizes 100,500] [--profiles default,realistic] [--admins on,off]
        [--latency-ms 20] [--workers 16] [--regions 4] [--quota-scale 1] [--json FILE]
    .venv/bin/python bench/collection.py --show FILE   # print an earlier run's figures again
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1", "eu-central-1", "us-west-2", "ap-southeast-2"]
DAY = "2026-11-23"
FLOOR_CALLS = 500
TRUTH_SLICE = 10  # accounts per truth request (the realistic profile's Config truth is large)


def _cpu_seconds(pid: int) -> float:
    # utime + stime of the sandbox server from /proc (Linux), in seconds.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def best_ratio(latency_ms: float, workers: int, cores: int, server_ms: float, client_ms: float) -> float | None:
    """The lowest ratio of wall time to ``calls x latency / workers`` that these CPU costs per call allow; None
    without added latency (there is no latency bound to compare with).

    Each call costs its latency plus the CPU spent on it (server and client) on its critical path, all the CPU must
    fit on the machine's cores, and each process spends nearly all of its CPU holding its one GIL, so on about one
    core: an estimate for an idle machine, not a proof.

    :param latency_ms: added latency per call.
    :param workers: calls in flight.
    :param cores: the machine's cores.
    :param server_ms: server CPU per call.
    :param client_ms: client CPU per call.
    """
    if latency_ms <= 0:
        return None
    cpu, one_core = server_ms + client_ms, max(server_ms, client_ms)
    per_call = max((latency_ms + cpu) / workers, cpu / cores, one_core)  # ms of wall per call, at best
    return per_call / (latency_ms / workers)


def quota_bound(buckets: dict[tuple[str, str, str, str], int], model: dict[str, Any]) -> tuple[float, str]:
    """(seconds, slowest bucket) the modelled quotas need at least for these calls.

    :param buckets: calls per (account, region, service, operation): the sandbox's bucket key (the region is the
        one the call is signed for, the client's own with an endpoint URL).
    :param model: ``GET /_sandbox/quotas`` (rates before scaling, ``scale``).
    """
    scale = float(model.get("scale") or 0.0)
    if not model.get("active", model.get("enabled")) or scale <= 0:
        return 0.0, "quotas off"
    best, where = 0.0, ""
    for (account, region, service, operation), n in buckets.items():
        spec = model["services"].get(service) or {}
        if spec.get("unlimited"):  # no bucket at all (sandbox/quotas.py quota_for)
            continue
        quota = (spec.get("operations") or {}).get(operation) or spec.get("default") or model["default"]
        # As QuotaModel.admit: the rate and the burst scaled, a bucket holds at least one token.
        rate, burst = float(quota["rate"]) * scale, max(1.0, float(quota["burst"]) * scale)
        if rate <= 0:
            continue
        need = max(0.0, (n - burst) / rate)
        if need > best:
            best, where = need, f"{service}.{operation} {account} {region}: {n} calls at {rate:g}/s burst {burst:g}"
    return best, where


def sandbox_quota_bound(counts: dict[str, Any], model: dict[str, Any]) -> tuple[float, str]:
    """:func:`quota_bound` of the calls the sandbox's buckets admitted (``GET /_sandbox/quotas/buckets``): the bound
    of a run whose calls cannot be counted client-side (the DAG's task processes), or a check of the client's count.

    Admitted calls only: a call refused by a quota took no token and neither does botocore's retry of it until one
    gets through, when that one call is admitted; so a run in which every call eventually succeeds has, per bucket,
    as many admitted calls as the client made calls, and a call that gave up after its retries has none.

    :param counts: ``GET /_sandbox/quotas/buckets``.
    :param model: ``GET /_sandbox/quotas``.
    """
    return quota_bound(admitted(counts), model)


def admitted(counts: dict[str, Any]) -> dict[tuple[str, str, str, str], int]:
    """Admitted calls per (account, region, service, operation) from ``GET /_sandbox/quotas/buckets``."""
    return {(b["account"], b["region"], b["service"], b["operation"]): int(b["admitted"])
            for b in counts["buckets"] if b["admitted"]}


def bucket_differences(client: dict[tuple[str, str, str, str], int], counts: dict[str, Any],
                       model: dict[str, Any]) -> list[str]:
    """Buckets whose client-side call count is not the sandbox's admitted count (services without a bucket, and
    every call while the quotas are off, are left out: the sandbox keeps no bucket for them)."""
    if not model.get("active", model.get("enabled")):
        return []
    server = admitted(counts)
    limited = {k: n for k, n in client.items() if not (model["services"].get(k[2]) or {}).get("unlimited")}
    return [f"{'.'.join(k[2:])} {k[0]} {k[1]}: client {limited.get(k, 0)}, sandbox {server.get(k, 0)}"
            for k in sorted(set(limited) | set(server)) if limited.get(k, 0) != server.get(k, 0)]


def _counting_access(access_cls: Any, admin_account: str) -> Any:
    """An AwsAccess that also counts calls per account, region, service and operation (the quota buckets).

    A call is counted once it has an answer (botocore's ``after-call``: after its retries, whatever the answer), so
    once it reached the service: a call whose assumed-role credentials were refused never left the client, takes no
    quota, and is not counted (it was, at ``before-call``). A call still throttled after botocore's last retry is
    counted here but admitted by no bucket: the one difference with the sandbox's counts this leaves.

    :param admin_account: the account of the admin credentials, for the admin's calls made before the access layer
        asks STS who it is (its ``admin_account_id`` is None until then; those calls were counted apart, under
        "admin", when this took the id from the access layer alone).
    """

    class Counting(access_cls):
        def client(self, service: str, region: str | None = None, account_id: str | None = None) -> Any:
            client = super().client(service, region, account_id)
            if not getattr(client, "_bench_counted", False):
                client._bench_counted = True
                owner = account_id if account_id and account_id != self.admin_account_id else None
                where = (owner, client.meta.region_name, client.meta.service_model.service_name)

                def count(model: Any, **_: Any) -> None:
                    account = where[0] or self.admin_account_id or admin_account
                    service = {"macie2": "macie2"}.get(where[2], where[2])
                    self.buckets[(account, where[1], service, model.name)] += 1

                client.meta.events.register("after-call", count)
            return client

    return Counting


def bare_floor(sb: Any, access: Any, region: str) -> dict:
    """CPU per call of a bare botocore loop (one cached GuardDuty client, ListDetectors) here and in the server."""
    client = access.client("guardduty", region)
    sb.clear_faults()  # latency costs no CPU and would only make the loop slow
    sb.set_quotas(enabled=False)
    for _ in range(20):  # warm: connection, model and caches
        client.list_detectors()
    cpu0, own0 = _cpu_seconds(sb.pid), _own_cpu()
    for _ in range(FLOOR_CALLS):
        client.list_detectors()
    own, server = _own_cpu() - own0, _cpu_seconds(sb.pid) - cpu0
    return {"calls": FLOOR_CALLS, "client_ms_per_call": round(1000 * own / FLOOR_CALLS, 2),
            "server_ms_per_call": round(1000 * server / FLOOR_CALLS, 2)}


# Stored tables compared with the truth: (table, key columns). A key is one row: stored twice is a duplicate.
TRUTH_TABLES = {
    "config": ("config_findings", ("account_id", "region", "rule_name", "resource_type", "resource_id")),
    "guardduty": ("guardduty_findings", ("account_id", "region", "guardduty_id")),
    "macie": ("macie_findings", ("account_id", "region", "macie_id")),
    "inventory": ("software_inventory", ("account_id", "region", "instance_id", "name", "version")),
}


def _chunk_columns(store: Any, table: str, accounts: list[str], columns: list[str]) -> list[list[Any]]:
    """``columns`` of the day's chunks of ``accounts`` (one file per account: never the whole day at once)."""
    from include.awsgov.core import tables

    out: list[list[Any]] = [[] for _ in columns]
    for account in accounts:
        part = store.read_chunk(table, DAY, account, schema=tables.SCHEMAS[table])
        for values, name in zip(out, columns, strict=True):
            values.extend(part.column(name).to_pylist())
    return out


def _want_slice(truth: dict, part: list[str], regions: list[str], admins: dict[str, str], no_role: set[str],
                unknown: set[str]) -> tuple[dict[str, set], dict[tuple, set[str]], dict[tuple[str, str, str], str]]:
    """(rows by section, Config compliances by key, coverage gaps) the truth of these accounts says must be
    stored. An account without the read role has a Trusted Advisor gap whatever the source: the organization view
    lists only prioritized checks, the others are read through the role."""
    want: dict[str, set] = {k: set() for k in TRUTH_TABLES}
    compliance: dict[tuple, set[str]] = {}
    want_gaps: dict[tuple[str, str, str], str] = {}
    for account in part:
        per_region = truth["config"].get(account, {})
        for region in regions:
            rules = per_region.get(region)
            if rules is None:
                want_gaps[(account, region, "config")] = "not_delivered"
            for rule, evaluations in (rules or {}).items():
                for e in evaluations:
                    key = (account, region, rule, e["resource_type"], e["resource_id"])
                    want["config"].add(key)
                    compliance.setdefault(key, set()).add(e["compliance"])
        for region, instances in truth["inventory"].get(account, {}).items():
            if region in regions:
                want["inventory"] |= {(account, region, i["instance_id"], a["name"], a["version"])
                                      for i in instances for a in i["applications"]}
        for source in ("guardduty", "macie"):
            if account not in truth[source]["accounts"]:
                unknown.add(account)  # the realistic profile's truth leaves the management account out
                continue
            for region in regions:
                state = truth[source]["accounts"].get(account, {}).get(region)
                if source in admins and account != admins[source]:
                    ok = bool(state) and state["relationship"] == "Enabled"
                elif source in admins:
                    ok = bool(state) and state["enabled"]
                elif account in no_role:
                    want_gaps[(account, region, source)] = "access_denied"
                    continue
                else:
                    ok = bool(state) and state["enabled"]
                if not ok:
                    want_gaps[(account, region, source)] = "not_enabled"
                    continue
                archived = (lambda f: f["service"]["archived"]) if source == "guardduty" else (
                    lambda f: f["archived"])
                want[source] |= {(account, region, f["id"]) for f in state["findings"] if not archived(f)}
        if account in no_role:
            want_gaps[(account, "global", "trusted_advisor")] = "access_denied"
    return want, compliance, want_gaps


def truth_check(sb: Any, store: Any, targets: list[str], regions: list[str], admins: dict[str, str],
                slice_size: int = TRUTH_SLICE) -> dict:
    """Stored rows and gaps against the sandbox's truth, ``slice_size`` accounts at a time: the truth and the stored
    chunks of one slice are compared, counted and let go before the next (the realistic profile holds ~25,000
    Config rows per account; all of them at once took 15.9 GB at 500 accounts). Exact all the same: a row is keyed
    by its account, so a slice's rows can only match its own accounts' truth, and every chunk of the day is read
    (an account with rows but no coverage is compared too, its rows all unexpected)."""
    chunks: set[str] = set()
    for table, _ in [*TRUTH_TABLES.values(), ("coverage", ())]:
        chunks.update(store.chunks(table, DAY))
    accounts = sorted(set(targets) | chunks)
    no_role = {a["id"] for a in sb.info["accounts"] if not a["read_role"]}
    totals = {name: Counter() for name in TRUTH_TABLES}
    unknown: set[str] = set()
    wrong_compliance = 0
    gaps_stored = gaps_seeded = 0
    gaps_by_status: Counter[str] = Counter()
    gaps_unexpected: list[str] = []
    gaps_missing: list[str] = []
    for start in range(0, len(accounts), slice_size):
        part = accounts[start:start + slice_size]
        truth = sb.truth(date=DAY, sections=["config", "guardduty", "macie", "inventory"], accounts=part)
        want, compliance, want_gaps = _want_slice(truth, part, regions, admins, no_role, unknown)
        left_out = unknown & set(part)  # nothing to compare with: left out of the threat comparison, and said so
        for name, (table, key) in TRUTH_TABLES.items():
            columns = _chunk_columns(store, table, part, [*key, "compliance"] if name == "config" else list(key))
            keys = list(zip(*columns[:len(key)], strict=True)) if columns[0] else []
            if name in ("guardduty", "macie") and left_out:
                keys = [k for k in keys if k[0] not in left_out]
            counts = Counter(keys)
            have = set(counts)
            t = totals[name]
            t["truth"] += len(want[name])
            t["stored"] += len(keys)
            t["lost"] += len(want[name] - have)
            t["unexpected"] += len(have - want[name])
            t["duplicated"] += sum(n - 1 for n in counts.values() if n > 1)
            if name == "config":
                # The sandbox's truth can list one rule evaluating one resource several times (hostile resource ids
                # drawn twice), which AWS cannot: such a key is one row, whose compliance must be one of the truth's.
                stored = dict(zip(keys, columns[-1], strict=True))
                wrong_compliance += sum(1 for k, v in stored.items() if k in compliance and v not in compliance[k])
            del columns, keys, counts, have
        account, region, source, status = _chunk_columns(store, "coverage", part,
                                                         ["account_id", "region", "source", "status"])
        gaps = {(a, r, s): st for a, r, s, st in zip(account, region, source, status, strict=True)
                if st != "ok" and not (a in left_out and s in ("guardduty", "macie"))}
        gaps_stored += len(gaps)
        gaps_seeded += len(want_gaps)
        gaps_by_status.update(gaps.values())
        gaps_unexpected += [f"{k}: {v}" for k, v in gaps.items() if want_gaps.get(k) != v]
        gaps_missing += [f"{k}: {v}" for k, v in want_gaps.items() if gaps.get(k) != v]
        del truth, want, compliance, want_gaps
    out: dict[str, Any] = {"not_in_truth": sorted(unknown), "config_wrong_compliance": wrong_compliance,
                           "slices": -(-len(accounts) // slice_size), "accounts_compared": len(accounts)}
    for name, t in totals.items():
        out[name] = {k: t[k] for k in ("truth", "stored", "lost", "unexpected", "duplicated")}
    out["gaps"] = {"stored": gaps_stored, "seeded": gaps_seeded, "unexpected": sorted(gaps_unexpected)[:5],
                   "missing": sorted(gaps_missing)[:5], "equal": not gaps_unexpected and not gaps_missing,
                   "by_status": dict(gaps_by_status)}
    return out


def deliver(sb: Any, attempts: int = 30) -> None:
    """Have the sandbox deliver the day (the realistic profile's snapshots take longer than the control API's 60 s
    timeout at 100 accounts; the delivery goes on in the server and a later request waits for it)."""
    for attempt in range(attempts):
        try:
            sb.deliver(DAY)
            return
        except OSError:  # TimeoutError, URLError: still delivering
            if attempt == attempts - 1:
                raise


def child(accounts: int, profile: str, admins_on: bool, latency_ms: float, workers: int, regions: int,
          quota_scale: float) -> dict:
    """One measured run in this process; returns the figures."""
    import logging

    from include.awsgov.collection import runner
    from include.awsgov.core.aws import AwsAccess
    from include.awsgov.core.settings import load_settings
    from include.awsgov.core.store import Store
    from sandbox.runner import Sandbox

    logging.basicConfig(level=logging.ERROR)
    region_list = REGIONS[:regions]
    with tempfile.TemporaryDirectory(prefix="bench-collection-") as tmp, \
            Sandbox(accounts=accounts, date=DAY, regions=region_list, seed_metrics_accounts=0, profile=profile,
                    quota_scale=quota_scale, state_dir=Path(tmp) / "sandbox") as sb:
        admins: dict[str, str] = {}
        if admins_on:
            truth = sb.truth(date=DAY, sections=["guardduty", "macie"], accounts=[sb.info["management_account_id"]])
            admins = {"guardduty": truth["guardduty"]["admin"], "macie": truth["macie"]["admin"]}
        cfg = load_settings({"regions": region_list, "collection": {s: {"delegated_admin": a}
                                                                    for s, a in admins.items()}})
        access = _counting_access(AwsAccess, sb.info["management_account_id"]).from_args(
            endpoint_url=sb.endpoint, aws_access_key_id="AKIABENCHADMIN000001", aws_secret_access_key="bench",
            external_id=sb.info["external_id"], session_name="bench-collection",
            retry_mode=cfg["collection"]["retry_mode"])
        access.buckets = Counter()
        opts = runner.Options.from_settings(cfg)
        if workers:
            opts = runner.Options(**{**opts.__dict__, "workers": workers})
        deliver(sb)  # the day's deliveries exist before the run, as on AWS (not timed)
        sb.set_faults(latency_ms=latency_ms)
        sb.reset_calls()
        sb.refill_quotas()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu0, own0, load0 = _cpu_seconds(sb.pid), _own_cpu(), os.getloadavg()[0]
        started = time.perf_counter()
        store = Store(Path(tmp) / "store")
        run = runner.collect_org(access, store, DAY, opts, run_id="bench")
        wall = time.perf_counter() - started
        rss_run = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the truth check's own memory
        server_cpu, own_cpu, load1 = _cpu_seconds(sb.pid) - cpu0, _own_cpu() - own0, os.getloadavg()[0]
        sandbox_calls = sb.calls()
        quotas, counts = sb.quotas(), sb.quota_buckets()
        bound_q, slowest = quota_bound(dict(access.buckets), quotas)
        bound_s, slowest_s = sandbox_quota_bound(counts, quotas)
        differ = bucket_differences(dict(access.buckets), counts, quotas)
        calls, by_operation = access.total_calls(), dict(sorted(access.calls.items()))
        sb.clear_faults()
        targets = sorted(store.read("coverage", DAY, DAY)["account_id"].unique())
        ta_source = (run["aggregate"].get("trusted_advisor") or {}).get("source")
        check = truth_check(sb, store, list(targets), region_list, admins)
        floor = bare_floor(sb, access, region_list[0])  # after the run's figures: its calls are not the run's
    bound = calls * latency_ms / 1000 / opts.workers
    return {
        "accounts": accounts, "profile": profile, "admins": admins_on, "collected": run["collected"],
        "regions": len(region_list), "workers": opts.workers, "latency_ms": latency_ms, "quota_scale": quota_scale,
        "api_calls": calls, "sandbox_calls": sandbox_calls["total"], "throttled": sandbox_calls["throttled"],
        "calls_per_account": round(calls / max(1, run["collected"]), 2),
        "wall_s": round(wall, 2), "bound_s": round(bound, 2), "ratio": round(wall / bound, 2) if bound else None,
        "quota_bound_s": round(bound_q, 2), "quota_ratio": round(wall / bound_q, 2) if bound_q else None,
        "quota_slowest": slowest, "quota_throttled": quotas.get("throttled_calls"),
        "sandbox_quota_bound_s": round(bound_s, 2), "sandbox_quota_slowest": slowest_s,
        "sandbox_quota_ratio": round(wall / bound_s, 2) if bound_s else None,
        "sandbox_admitted": counts["admitted"], "buckets_differing": len(differ), "buckets_differ": differ[:5],
        "gaps": run["gaps"], "truth": check, "ta_source": ta_source,
        "peak_rss_mb_before_run": round(rss_before / 1024, 1),
        "peak_rss_mb": round(rss_run / 1024, 1),
        "sandbox_cpu_s": round(server_cpu, 2), "sandbox_cpu_share_of_wall": round(server_cpu / wall, 2),
        "sandbox_cpu_ms_per_call": round(1000 * server_cpu / max(1, sandbox_calls["total"]), 2),
        "collector_cpu_s": round(own_cpu, 2), "collector_cpu_ms_per_call": round(1000 * own_cpu / max(1, calls), 2),
        "cores": os.cpu_count(), "loadavg_start_end": [round(load0, 2), round(load1, 2)],
        "by_operation": by_operation, "bare_call_floor": floor,
    }


def _print(fig: dict) -> None:
    admins = "delegated admins" if fig["admins"] else "no delegated admins"
    print(f"\n== {fig['accounts']} accounts ({fig['collected']} collected) x {fig['regions']} regions, "
          f"{fig['profile']} profile, {admins}, {fig['latency_ms']:.0f} ms latency, {fig['workers']} workers, "
          f"quota scale {fig['quota_scale']:g}, Trusted Advisor from {fig.get('ta_source')}")
    print(f"api calls            {fig['api_calls']} (sandbox counted {fig['sandbox_calls']}, throttled "
          f"{fig['throttled']}), {fig['calls_per_account']} per account")
    print(f"wall time            {fig['wall_s']} s ({fig['wall_s'] / 60:.2f} min); latency bound calls x latency / "
          f"workers = {fig['bound_s']} s; ratio {fig['ratio']}")
    print(f"quota bound          {fig['quota_bound_s']} s = {fig['quota_bound_s'] / 60:.2f} min "
          f"({fig['quota_slowest']}); wall / quota bound {fig['quota_ratio']}; calls refused by quotas "
          f"{fig['quota_throttled']}")
    if "sandbox_quota_bound_s" in fig:  # runs recorded before the sandbox counted its buckets have no such figure
        agree = "yes" if not fig["buckets_differing"] else (
            f"no, {fig['buckets_differing']} buckets differ: {'; '.join(fig['buckets_differ'])}")
        print(f"quota bound, sandbox {fig['sandbox_quota_bound_s']} s from the {fig['sandbox_admitted']} calls its "
              f"buckets admitted ({fig['sandbox_quota_slowest']}); wall / it {fig['sandbox_quota_ratio']}; every "
              f"bucket's count = the client's: {agree}")
    print(f"truth notes          Config rows whose compliance is not the truth's: "
          f"{fig['truth']['config_wrong_compliance']}; accounts absent from the threat truth (not compared): "
          f"{fig['truth']['not_in_truth']}")
    for name in ("config", "guardduty", "macie", "inventory"):
        t = fig["truth"][name]
        print(f"truth {name:<14} {t['stored']} stored / {t['truth']} in truth: lost {t['lost']}, duplicated "
              f"{t['duplicated']}, unexpected {t['unexpected']}")
    g = fig["truth"]["gaps"]
    print(f"coverage gaps        {g['stored']} stored / {g['seeded']} seeded, equal: {g['equal']} {g['by_status']}"
          + (f"; unexpected {g['unexpected']} missing {g['missing']}" if not g["equal"] else ""))
    print(f"peak RSS             {fig['peak_rss_mb']} MB (before the run: {fig['peak_rss_mb_before_run']} MB)")
    print(f"sandbox server CPU   {fig['sandbox_cpu_s']} s ({fig['sandbox_cpu_share_of_wall']:.0%} of wall), "
          f"{fig['sandbox_cpu_ms_per_call']} ms per call; collector CPU {fig['collector_cpu_s']} s, "
          f"{fig['collector_cpu_ms_per_call']} ms per call; {fig['cores']} cores, load "
          f"{fig['loadavg_start_end'][0]} -> {fig['loadavg_start_end'][1]}")
    server_ms, client_ms = fig["sandbox_cpu_ms_per_call"], fig["collector_cpu_ms_per_call"]
    ratio = best_ratio(fig["latency_ms"], fig["workers"], fig["cores"], server_ms, client_ms)
    floor = "n/a (no added latency)" if ratio is None else (
        f"wall >= {ratio * fig['bound_s']:.1f} s, ratio >= {ratio:.2f} on an idle machine")
    print(f"cpu floor            {server_ms + client_ms:.1f} ms of CPU per call (server + collector) -> {floor}")
    bare = fig["bare_call_floor"]
    bare_ratio = best_ratio(fig["latency_ms"], fig["workers"], fig["cores"], bare["server_ms_per_call"],
                            bare["client_ms_per_call"])
    print(f"bare-call floor      client {bare['client_ms_per_call']} ms, server {bare['server_ms_per_call']} ms CPU "
          f"per call -> ratio >= {'n/a' if bare_ratio is None else f'{bare_ratio:.2f}'}")
    print("calls by operation   " + ", ".join(f"{k}={v}" for k, v in fig["by_operation"].items()))


def side_by_side(figures: list[dict]) -> None:
    """One line per case: wall time and quota bound in minutes, their ratio, CPU per call, rows against the truth."""
    print("\n== side by side (measured)")
    print(f"{'accounts':>8} {'profile':>9} {'admins':>6} {'calls/acct':>10} {'wall min':>8} {'quota min':>9} "
          f"{'wall/quota':>10} {'srv ms/call':>11} {'col ms/call':>11} {'cpu s/wall s':>12} {'load':>11} {'lost':>5} "
          f"{'dup':>4} {'gaps=seeded':>11}")
    for f in figures:
        lost = sum(f["truth"][k]["lost"] + f["truth"][k]["unexpected"] for k in ("config", "guardduty", "macie",
                                                                                 "inventory"))
        lost += f["truth"]["config_wrong_compliance"]
        dup = sum(f["truth"][k]["duplicated"] for k in ("config", "guardduty", "macie", "inventory"))
        cpu = f"{f['sandbox_cpu_s'] + f['collector_cpu_s']:.0f}/{f['wall_s']:.0f}"
        load = "-".join(f"{x:g}" for x in f["loadavg_start_end"])
        print(f"{f['accounts']:>8} {f['profile']:>9} {'on' if f['admins'] else 'off':>6} "
              f"{f['calls_per_account']:>10} {f['wall_s'] / 60:>8.2f} {f['quota_bound_s'] / 60:>9.2f} "
              f"{str(f['quota_ratio']):>10} {f['sandbox_cpu_ms_per_call']:>11} {f['collector_cpu_ms_per_call']:>11} "
              f"{cpu:>12} {load:>11} {lost:>5} {dup:>4} {str(f['truth']['gaps']['equal']):>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500", help="comma-separated account counts")
    parser.add_argument("--profiles", default="default,realistic", help="sandbox profiles: default, realistic")
    parser.add_argument("--admins", default="on,off", help="GuardDuty/Macie delegated administrators: on, off")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=0, help="threads (default: settings collection.max_workers)")
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--quota-scale", type=float, default=1.0, help="sandbox quotas: 1 = AWS's rates, 0 = off")
    parser.add_argument("--cases", default="", help="instead of sizes x profiles x admins: size:profile:on|off,...")
    parser.add_argument("--json", help="also write every case's figures to this file")
    parser.add_argument("--show", help="print the figures of an earlier run's --json file instead of running")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.show:
        figures = json.loads(Path(args.show).read_text())
        for fig in figures:
            _print(fig)
        side_by_side(figures)
        return
    if args.child:
        size, profile, admins = args.child.split(":")
        print(json.dumps(child(int(size), profile, admins == "on", args.latency_ms, args.workers, args.regions,
                               args.quota_scale)))
        return
    figures = []
    cases = [c.split(":") for c in args.cases.split(",")] if args.cases else [
        [size, profile, admins] for size in args.sizes.split(",") for profile in args.profiles.split(",")
        for admins in args.admins.split(",")]
    for size, profile, admins in cases:
        out = subprocess.run([sys.executable, __file__, "--child", f"{size}:{profile}:{admins}",
                              "--latency-ms", str(args.latency_ms), "--workers", str(args.workers),
                              "--regions", str(args.regions), "--quota-scale", str(args.quota_scale)],
                             capture_output=True, text=True, cwd=REPO)
        if out.returncode:
            print(f"\n== {size} accounts, {profile}, admins {admins}: FAILED\n{out.stderr[-3000:]}", flush=True)
            continue
        fig = json.loads(out.stdout.strip().splitlines()[-1])
        figures.append(fig)
        _print(fig)
        sys.stdout.flush()
    side_by_side(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
