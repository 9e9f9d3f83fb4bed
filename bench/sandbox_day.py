"""The sandbox's own cost of a realistic day (issue #18): start, deliver the day, read the Config truth.

Starts ``Sandbox(profile="realistic")`` with 4 regions from a source tree (this one, or ``--tree`` for another
checkout, e.g. ``git worktree add /tmp/base main``, to compare side by side), delivers the day as
bench/collection.py does, reads ``truth(sections=["config"])`` of every account in slices of 10 and prints one JSON
line: seconds of each step, the server process's VmHWM/VmRSS (MB) after the delivery and at the end, load averages.

Usage: ``python bench/sandbox_day.py --accounts 200 [--tree /tmp/base]``. Prints figures only; never part of
``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DAY = "2026-03-18"
REGIONS = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-1"]
TRUTH_SLICE = 10  # accounts per truth request, as bench/collection.py


def memory_mb(pid: int) -> dict[str, int]:
    """VmHWM (peak) and VmRSS of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM", "VmRSS")):
            out[line.split(":")[0]] = int(line.split()[1]) // 1024
    return out


def run(accounts: int) -> dict:
    from sandbox.runner import Sandbox

    out: dict = {"accounts": accounts, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-day-") as tmp:
        t0 = time.perf_counter()
        sb = Sandbox(accounts=accounts, date=DAY, regions=REGIONS, seed_metrics_accounts=0, profile="realistic",
                     quota_scale=0, state_dir=Path(tmp) / "sandbox", startup_timeout=1800).start()
        try:
            out["start_s"] = round(time.perf_counter() - t0, 1)
            t1 = time.perf_counter()
            while True:  # the control API times out after 60 s; the delivery goes on in the server
                try:
                    out["delivered"] = sb.deliver(DAY)
                    break
                except OSError:
                    time.sleep(1)
            out["deliver_s"] = round(time.perf_counter() - t1, 1)
            out["mb_after_deliver"] = memory_mb(sb.pid)
            ids = [a["id"] for a in sb.info["accounts"]]
            t2 = time.perf_counter()
            rows = 0
            for i in range(0, len(ids), TRUTH_SLICE):
                config = sb.truth(date=DAY, sections=["config"], accounts=ids[i:i + TRUTH_SLICE])["config"]
                rows += sum(len(r) for regions in config.values() for rules in regions.values() for r in rules.values())
            out["truth_s"] = round(time.perf_counter() - t2, 1)
            out["truth_evaluations"] = rows
            out["mb_end"] = memory_mb(sb.pid)
        finally:
            sb.stop()
    out["deliver_plus_truth_s"] = round(out["deliver_s"] + out["truth_s"], 1)
    out["load_after"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]),
                        help="source tree whose sandbox/ is measured (default: this one)")
    args = parser.parse_args()
    sys.path.insert(0, args.tree)  # Sandbox starts its server from the tree it is imported from
    print(json.dumps({"tree": args.tree, **run(args.accounts)}), flush=True)


if __name__ == "__main__":
    main()
