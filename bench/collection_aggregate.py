"""The collection's organization-level stage (``runner.collect_aggregate``, phase 1) and ``runner.finish_run``, old
code against new code side by side.

Phase 1: one sandbox (``--accounts``, ``--profile``, ``--regions``, quotas at AWS's rates), GuardDuty and Macie
through their delegated administrators as bench/collection.py sets them, ``--latency-ms`` added to every call.
Each round runs ``collect_aggregate`` from every tree in turn (a child process per run, the tree as its working
directory and first on ``sys.path``; ``--old-tree``: another checkout, e.g.
``git worktree add /tmp/old 6fdf914`` with ``ln -s $PWD/.venv /tmp/old/.venv``) into a fresh store, the sandbox's
quotas refilled and its call counters reset before each run. Per run: wall, CPU of the process, calls (and those
the sandbox throttled), each part's wall (start and end, from the part's function), files written under
``_staging/``, phase 1's own quota bound from the calls the sandbox's buckets admitted, the load average; and the
phase-2 side: building every account's job from the staged files (what ``collect_accounts`` reads per account).

``--finish-from STORE``: instead, time ``finish_run`` from each tree on fresh copies of a collected day (its read
caches removed, as at the end of a run), ``--rounds`` times alternated.

    .venv/bin/python bench/collection_aggregate.py --old-tree /tmp/old [--accounts 1000] [--profile realistic]
        [--regions 4] [--latency-ms 20] [--rounds 2] [--port 0]
    .venv/bin/python bench/collection_aggregate.py --old-tree /tmp/old --finish-from STORE [--rounds 2]

Prints figures only; never part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-11-23"
REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1", "eu-central-1", "us-west-2", "ap-southeast-2"]
PARTS = ("_stage_config_sources", "_stage_ta", "_stage_threats")  # phase 1's parts in both versions


def child_aggregate(state_dir: str, store_url: str, latency_ms: float) -> dict[str, Any]:
    """One ``collect_aggregate`` of every collectable account, from the tree in the working directory."""
    sys.path.insert(0, os.getcwd())
    import logging

    from bench.collection import sandbox_quota_bound
    from bench.collection_dag import collection_settings, own_cpu, threat_admins
    from include.awsgov.collection import runner
    from include.awsgov.core import accounts as org
    from include.awsgov.core.aws import AwsAccess
    from include.awsgov.core.settings import load_settings
    from include.awsgov.core.store import Store
    from sandbox.runner import Sandbox

    logging.basicConfig(level=logging.ERROR)
    sb = Sandbox.attach(state_dir)
    cfg = load_settings(collection_settings(sb.info["regions"], threat_admins(sb, True)))
    access = AwsAccess.from_args(
        endpoint_url=sb.endpoint, aws_access_key_id="AKIABENCHAGGREGATE01", aws_secret_access_key="bench",
        external_id=sb.info["external_id"], session_name="bench-aggregate", retry_mode=cfg["collection"]["retry_mode"])
    opts = runner.Options.from_settings(cfg)
    sb.clear_faults()
    targets = [a["account_id"] for a in org.collectable_listed(org.list_org_accounts(access))]  # not timed
    store = Store(store_url)
    parts: dict[str, dict[str, float]] = {}
    lock = threading.Lock()
    start = [0.0]

    def timed(name: str) -> None:
        fn = getattr(runner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                with lock:
                    parts[name] = {"start": round(began - start[0], 2), "end": round(ended - start[0], 2)}

        setattr(runner, name, wrapper)

    for name in PARTS:
        timed(name)
    sb.set_faults(latency_ms=latency_ms)
    sb.refill_quotas()
    sb.reset_calls()
    calls0, load0, cpu0 = access.total_calls(), os.getloadavg()[0], own_cpu()
    start[0] = time.perf_counter()
    runner.collect_aggregate(access, store, DAY, targets, opts)
    wall, cpu = time.perf_counter() - start[0], own_cpu() - cpu0
    load1 = os.getloadavg()[0]
    counted = sb.calls()
    bound, slowest = sandbox_quota_bound(sb.quota_buckets(), sb.quotas())
    sb.clear_faults()
    staged_files = sum(1 for _ in Path(store.path("_staging")).rglob("*") if _.is_file())
    # Phase 2's side: every account's job built from the staged files, as collect_accounts does (no AWS call).
    catalogue, ta_source = runner._load_catalogue(store, DAY, opts), runner._load_ta_source(store, DAY, opts)
    cpu0, began = own_cpu(), time.perf_counter()
    if hasattr(runner, "Staged"):
        staged = runner.Staged(store, DAY, runner.staged_names(opts, ta_source))
        jobs = [runner.account_job(access, store, DAY, a, opts, catalogue, ta_source, staged) for a in targets]
    else:  # older code: each account reads its own staged files
        jobs = [runner.account_job(access, store, DAY, a, opts, catalogue, ta_source) for a in targets]
    return {"tree": os.getcwd(), "accounts": len(targets), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "calls": access.total_calls() - calls0, "throttled": counted["throttled"], "parts": parts,
            "staged_files": staged_files, "quota_bound_s": round(bound, 2), "quota_slowest": slowest,
            "load": [round(load0, 2), round(load1, 2)], "jobs_wall_s": round(time.perf_counter() - began, 2),
            "jobs_cpu_s": round(own_cpu() - cpu0, 2), "jobs": len(jobs)}


def child_finish(source: str, work: str) -> dict[str, Any]:
    """``finish_run`` from the tree in the working directory on a fresh copy of ``source`` without read caches."""
    sys.path.insert(0, os.getcwd())
    import datetime as dt
    import logging

    from bench.collection_dag import own_cpu
    from include.awsgov.collection import runner
    from include.awsgov.core.store import COMPACT_FILE, Store

    logging.basicConfig(level=logging.ERROR)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    for path in Path(work).rglob(COMPACT_FILE):
        path.unlink()
    os.sync()
    store = Store(work)
    accounts = store.chunks("coverage", DAY)
    load0, cpu0, began = os.getloadavg()[0], own_cpu(), time.perf_counter()
    runner.finish_run(store, DAY, accounts, run_id="bench", started_at=dt.datetime.now(dt.UTC), regions=[],
                      api_calls=0)
    wall, cpu = time.perf_counter() - began, own_cpu() - cpu0
    return {"tree": os.getcwd(), "accounts": len(accounts), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "load": [round(load0, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-tree", help="the other checkout (the old code)")
    parser.add_argument("--new-tree", default=str(REPO))
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--profile", default="realistic")
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=0, help="the sandbox's port (0: a free one)")
    parser.add_argument("--finish-from", help="time finish_run on copies of this collected store instead")
    parser.add_argument("--child-aggregate", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--child-finish", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_aggregate:
        state, store, latency = args.child_aggregate
        print(json.dumps(child_aggregate(state, store, float(latency))))
        return
    if args.child_finish:
        print(json.dumps(child_finish(*args.child_finish)))
        return
    if not args.old_tree:
        parser.error("--old-tree is required")
    trees = {"old": Path(args.old_tree).resolve(), "new": Path(args.new_tree).resolve()}
    tmp = Path(tempfile.mkdtemp(prefix="bench-aggregate-"))

    def child(tree: str, *argv: str) -> dict[str, Any]:
        out = subprocess.run([str(trees[tree] / ".venv" / "bin" / "python"), str(Path(__file__).resolve()), *argv],
                             cwd=trees[tree], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"{tree} run failed:\n{out.stderr[-3000:]}")
        return {"code": tree, **json.loads(out.stdout.strip().splitlines()[-1])}

    runs = []
    try:
        if args.finish_from:
            for _ in range(args.rounds):
                for tree in trees:
                    runs.append(child(tree, "--child-finish", args.finish_from, str(tmp / "finish")))
                    print(json.dumps(runs[-1]), flush=True)
            return
        sys.path.insert(0, str(REPO))
        from sandbox.runner import Sandbox

        with Sandbox(accounts=args.accounts, port=args.port, date=DAY, regions=REGIONS[:args.regions],
                     seed_metrics_accounts=0, profile=args.profile, quota_scale=1.0, state_dir=tmp / "sandbox",
                     startup_timeout=1800):
            for _ in range(args.rounds):
                for tree in trees:
                    store = tmp / f"store-{tree}"
                    shutil.rmtree(store, ignore_errors=True)
                    runs.append(child(tree, "--child-aggregate", str(tmp / "sandbox"), str(store),
                                      str(args.latency_ms)))
                    print(json.dumps(runs[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if runs:
            print("\ncode  wall s  cpu s  calls  throttled  staged files  quota bound s  jobs cpu s  load")
            for r in runs:
                print(f"{r['code']:<5} {r['wall_s']:>6} {r['cpu_s']:>6} {r.get('calls', ''):>6} "
                      f"{r.get('throttled', ''):>10} {r.get('staged_files', ''):>13} {r.get('quota_bound_s', ''):>14} "
                      f"{r.get('jobs_cpu_s', ''):>11}  {r['load'][0]}-{r['load'][1]}")


if __name__ == "__main__":
    main()
