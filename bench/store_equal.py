"""Old code against new code on the same sandbox day: is every stored table the same?

Starts one sandbox (``--accounts``, ``--profile``, 4 regions, quotas off), delivers the day as bench/collection.py
does, and runs a whole collection (``runner.collect_org``, GuardDuty and Macie through their delegated
administrators) from each tree into its own store: a child process per tree, with the tree as its working directory
and first on ``sys.path`` (``--old-tree``: another checkout, e.g. ``git worktree add /tmp/old 6fdf914`` with
``ln -s $PWD/.venv /tmp/old/.venv``). Trusted Advisor refresh requests are off in both runs: they change the
sandbox's results, and the second run must read the day the first one read. With ``--rerun N`` it then reruns N
accounts in a copy of each store, as the DAG's ``accounts`` param does (stage them, collect them, finish with every
account kept), and compares those stores too.

Compared (:func:`compare_stores`): every chunk file of every table (bytes, and rows; ``collection_runs`` without its
wall-clock columns), ``store.read`` of each table, each compact file's rows, and every account's slice of every
staged table, whatever the layout (one file per account, or one file per run). Prints JSON; exits 1 on a difference.

    .venv/bin/python bench/store_equal.py --old-tree /tmp/old [--accounts 50] [--profile realistic] [--rerun 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-11-23"
REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1", "eu-central-1"]
WALL_CLOCK = {"collection_runs": ["started_at", "finished_at"]}  # the only columns a run may write differently


def child_run(state_dir: str, store_url: str, accounts: str) -> dict[str, Any]:
    """One collection from the tree in the working directory (its code is imported, not this file's tree's)."""
    sys.path.insert(0, os.getcwd())
    import datetime as dt
    import logging

    from bench.collection_dag import collection_settings, threat_admins
    from include.awsgov.collection import runner
    from include.awsgov.core import accounts as org
    from include.awsgov.core.aws import AwsAccess
    from include.awsgov.core.settings import load_settings
    from include.awsgov.core.store import Store
    from sandbox.runner import Sandbox

    logging.basicConfig(level=logging.ERROR)
    sb = Sandbox.attach(state_dir)
    cfg = load_settings(collection_settings(sb.info["regions"], threat_admins(sb, True)))
    access = AwsAccess.from_args(endpoint_url=sb.endpoint, aws_access_key_id="AKIABENCHSTOREEQUAL1",
                                 aws_secret_access_key="bench", external_id=sb.info["external_id"],
                                 session_name="bench-store-equal", retry_mode=cfg["collection"]["retry_mode"])
    opts = runner.Options(**{**runner.Options.from_settings(cfg).__dict__, "refresh": False})
    store = Store(store_url)
    if not accounts:
        runner.collect_org(access, store, DAY, opts, run_id="store-equal")
        return {"tree": os.getcwd(), "api_calls": access.total_calls()}
    listed = org.collectable_listed(org.list_org_accounts(access))
    chosen = [a["account_id"] for a in runner.rerun_targets(listed, accounts.split(","))]
    runner.collect_aggregate(access, store, DAY, chosen, opts)
    runner.collect_accounts(access, store, DAY, chosen, opts)
    runner.finish_run(store, DAY, [a["account_id"] for a in listed], run_id="store-equal-rerun",
                      started_at=dt.datetime.now(dt.UTC), regions=opts.regions, api_calls=access.total_calls())
    return {"tree": os.getcwd(), "api_calls": access.total_calls(), "rerun": chosen}


def staged_slices(folder: Path) -> dict[str, list[dict]]:
    """{account: rows} of one staged table's day, from one file per account (``part-<account>``) or one file of
    every account (``part-all``, rows grouped by their account_id)."""
    import pyarrow.parquet as pq

    out: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("part-*.parquet")):
        chunk = path.name[len("part-"):-len(".parquet")]
        for row in pq.read_table(path).to_pylist():
            out.setdefault(row["account_id"] if chunk == "all" else chunk, []).append(row)
    return out


def compare_stores(old: Path, new: Path, day: str = DAY) -> dict[str, Any]:
    """Every table of two stores of the same day, as the module docstring says; ``problems`` lists what differs."""
    import pandas as pd
    import pyarrow.parquet as pq

    sys.path.insert(0, str(REPO))
    from include.awsgov.core import tables
    from include.awsgov.core.store import COMPACT_FILE, Store

    report: dict[str, Any] = {"tables": {}, "staged": {}, "problems": []}
    problems = report["problems"]
    names = sorted({p.name for root in (old, new) for p in root.iterdir() if p.is_dir() and p.name[0] != "_"})
    for table in names:
        files = {root: sorted(str(p.relative_to(root)) for p in (root / table).rglob("part-*.parquet"))
                 for root in (old, new)}
        entry = {"files": len(files[old]), "bytes_equal": 0, "rows_equal": 0, "rows": 0}
        if files[old] != files[new]:
            problems.append(f"{table}: chunk files differ: {sorted(set(files[old]) ^ set(files[new]))[:5]}")
        for rel in sorted(set(files[old]) & set(files[new])):
            a, b = pq.read_table(old / rel), pq.read_table(new / rel)
            entry["rows"] += a.num_rows
            entry["bytes_equal"] += (old / rel).read_bytes() == (new / rel).read_bytes()
            drop = [c for c in WALL_CLOCK.get(table, []) if c in a.column_names]
            if a.drop_columns(drop).equals(b.drop_columns(drop)):
                entry["rows_equal"] += 1
            else:
                problems.append(f"{rel}: rows differ")
        schema = tables.SCHEMAS.get(table)
        frames = [Store(str(root)).read(table, day, day, schema=schema).drop(columns=WALL_CLOCK.get(table, []))
                  for root in (old, new)]
        try:
            pd.testing.assert_frame_equal(*frames)
            entry["store_read_equal"] = True
        except AssertionError as exc:
            entry["store_read_equal"] = False
            problems.append(f"{table}: store.read differs: {str(exc)[:300]}")
        compacts = [root / table / f"dt={day}" / COMPACT_FILE for root in (old, new)]
        if any(p.exists() for p in compacts):
            # Rows only: the compact file's metadata records its chunks' modification times.
            same = all(p.exists() for p in compacts) and pq.read_table(compacts[0]).replace_schema_metadata(
                None).equals(pq.read_table(compacts[1]).replace_schema_metadata(None))
            entry["compact_rows_equal"] = same
            if not same:
                problems.append(f"{table}: compact files' rows differ")
        report["tables"][table] = entry
    staging = {root: root / "_staging" for root in (old, new)}
    for name in sorted({p.name for s in staging.values() if s.exists() for p in s.iterdir()}):
        parts = {root: staging[root] / name / f"dt={day}" for root in (old, new)}
        if name == "ta_catalogue":  # JSON files
            texts = [{p.name: p.read_bytes() for p in sorted(parts[root].glob("*.json"))} if parts[root].exists()
                     else {} for root in (old, new)]
            report["staged"][name] = {"files_equal": texts[0] == texts[1]}
            if texts[0] != texts[1]:
                problems.append(f"_staging/{name}: files differ")
            continue
        slices = [staged_slices(parts[root]) if parts[root].exists() else {} for root in (old, new)]
        accounts = sorted(set(slices[0]) | set(slices[1]))
        differ = [a for a in accounts if slices[0].get(a, []) != slices[1].get(a, [])]
        report["staged"][name] = {"accounts": len(accounts), "rows": sum(map(len, slices[0].values())),
                                  "slices_differ": len(differ)}
        if differ:
            problems.append(f"_staging/{name}: slices of {len(differ)} accounts differ, e.g. {differ[:3]}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-tree", help="the other checkout (the old code)")
    parser.add_argument("--new-tree", default=str(REPO))
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--profile", default="realistic")
    parser.add_argument("--rerun", type=int, default=3, help="accounts rerun afterwards in copies of both stores")
    parser.add_argument("--keep", help="keep the stores under this folder")
    parser.add_argument("--port", type=int, default=0, help="the sandbox's port (0: a free one)")
    parser.add_argument("--child", nargs=3, metavar=("STATE_DIR", "STORE", "ACCOUNTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_run(*args.child)))
        return
    if not args.old_tree:
        parser.error("--old-tree is required")
    sys.path.insert(0, str(REPO))
    from bench.collection import deliver
    from sandbox.runner import Sandbox

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench-store-equal-"))
    trees = {"old": Path(args.old_tree).resolve(), "new": Path(args.new_tree).resolve()}

    def run(tree: str, store: Path, accounts: str = "") -> dict:
        python = trees[tree] / ".venv" / "bin" / "python"
        out = subprocess.run([str(python), str(Path(__file__).resolve()), "--child", str(tmp / "sandbox"),
                              str(store), accounts or ""], cwd=trees[tree], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"{tree} run failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    result: dict[str, Any] = {"accounts": args.accounts, "profile": args.profile, "trees": {k: str(v) for k, v in
                                                                                              trees.items()}}
    with Sandbox(accounts=args.accounts, port=args.port, date=DAY, regions=REGIONS, seed_metrics_accounts=0,
                 profile=args.profile, quota_scale=0, state_dir=tmp / "sandbox", startup_timeout=1800) as sb:
        deliver(sb)
        result["runs"] = [run(tree, tmp / tree) for tree in ("old", "new")]
        result["full"] = compare_stores(tmp / "old", tmp / "new")
        if args.rerun:
            chunks = sorted(p.name[len("part-"):-len(".parquet")]
                            for p in (tmp / "old" / "coverage" / f"dt={DAY}").glob("part-*.parquet"))
            chosen = ",".join(chunks[1::max(1, len(chunks) // args.rerun)][:args.rerun])
            for tree in ("old", "new"):
                shutil.copytree(tmp / tree, tmp / f"{tree}-rerun")
            result["rerun_runs"] = [run(tree, tmp / f"{tree}-rerun", chosen) for tree in ("old", "new")]
            result["rerun"] = compare_stores(tmp / "old-rerun", tmp / "new-rerun")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))
    problems = result["full"]["problems"] + (result.get("rerun") or {}).get("problems", [])
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
