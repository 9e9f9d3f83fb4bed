"""`make bench`: run every benchmark in one go and print their figures (each script prints its own)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

RUNS = [
    # bench/nab.py scores the five NAB folders of shared/benchmarks (nab_aws and nab_more's four) by default.
    ("NAB quality of the anomaly detector", ["nab.py", "--out", str(REPO / "out" / "nab")]),
    ("anomaly detector speed", ["anomaly_speed.py"]),
    ("collection at scale", ["collection.py"]),
    # A real Airflow (standalone) running governance_collection beside the library on one sandbox; 50 accounts keep
    # `make bench` short (about 5 minutes); the issue #18 figure is `python bench/collection_dag.py` (200 accounts).
    ("governance_collection DAG run against the library", ["collection_dag.py", "--accounts", "50"]),
    ("CloudWatch fetching across accounts", ["metric_fetch.py"]),
    ("onboarding at scale", ["onboarding.py"]),
    ("report rendering and SMTP sending", ["report_send.py"]),
]


def main() -> int:
    failures = 0
    for title, (script, *args) in RUNS:
        path = BENCH / script
        if not path.exists():
            print(f"== {title}: {script} missing, skipped")
            continue
        print(f"\n== {title}: python bench/{script} {' '.join(args)}", flush=True)
        started = time.perf_counter()
        rc = subprocess.run([sys.executable, str(path), *args], cwd=REPO).returncode
        print(f"-- {script}: exit {rc}, {time.perf_counter() - started:.1f}s", flush=True)
        failures += rc != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
