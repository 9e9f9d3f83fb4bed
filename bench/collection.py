"""Benchmark of the daily collection against the sandbox: API calls, wall time against the latency bound, memory.

For each size (default 100 and 500 accounts) a child process starts a sandbox of that size with added latency per
call, runs one whole collection (``runner.collect_org``: accounts, aggregator, every account, run row) into a
temporary store, and prints:

- total API calls (the collector's count and the sandbox's count) and calls per account;
- wall time, and the ratio of wall time to the bound ``calls x latency / concurrency`` at the configured
  concurrency (``runner.max_workers``): 1.0 would mean every worker waited on the network all the time;
- peak RSS of the collector process (each size in a fresh process, so peaks do not carry over);
- the CPU time of the sandbox server and of the collector during the run, per call, and the machine's load: when
  their sum per call exceeds ``latency / concurrency`` on the cores available, or either one alone exceeds
  ``latency / concurrency`` (a Python process spends nearly all its CPU under its one GIL, on about one core),
  CPU (not network latency) is the bottleneck and the ratio cannot reach 1.
- the floor: after the run, against the same sandbox (latency off), the CPU per call of a bare botocore loop
  (one cached client, ``FLOOR_CALLS`` trivial calls) in this process and in the server, and the best ratio those
  two allow at the same workers, latency and cores: what this machine allows whatever our own code does.

    .venv/bin/python bench/runner.py [--sizes 100,500] [--latency-ms 20] [--workers 16] [--regions 4]
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1", "eu-central-1", "us-west-2", "ap-southeast-2"]
DAY = "2026-11-23"
FLOOR_CALLS = 500


def _cpu_seconds(pid: int) -> float:
    # utime + stime of the sandbox server from /proc (Linux), in seconds.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def best_ratio(latency_ms: float, workers: int, cores: int, server_ms: float, client_ms: float) -> float:
    """The lowest ratio of wall time to ``calls x latency / workers`` that these CPU costs per call allow.

    Each call costs its latency plus the CPU spent on it (server and client) on its critical path, all the CPU must
    fit on the machine's cores, and each process spends nearly all of its CPU holding its one GIL, so on about one
    core: an estimate for an idle machine, not a proof.

    :param latency_ms: added latency per call.
    :param workers: calls in flight.
    :param cores: the machine's cores.
    :param server_ms: server CPU per call.
    :param client_ms: client CPU per call.
    """
    cpu, one_core = server_ms + client_ms, max(server_ms, client_ms)
    per_call = max((latency_ms + cpu) / workers, cpu / cores, one_core)  # ms of wall per call, at best
    return per_call / (latency_ms / workers)


def bare_floor(sb: object, access: object, region: str) -> dict:
    """CPU per call of a bare botocore loop (one cached GuardDuty client, ListDetectors) here and in the server."""
    client = access.client("guardduty", region)
    sb.clear_faults()  # latency costs no CPU and would only make the loop slow
    for _ in range(20):  # warm: connection, model and caches
        client.list_detectors()
    cpu0, own0 = _cpu_seconds(sb.pid), _own_cpu()
    for _ in range(FLOOR_CALLS):
        client.list_detectors()
    own, server = _own_cpu() - own0, _cpu_seconds(sb.pid) - cpu0
    return {"calls": FLOOR_CALLS, "client_ms_per_call": round(1000 * own / FLOOR_CALLS, 2),
            "server_ms_per_call": round(1000 * server / FLOOR_CALLS, 2)}


def child(accounts: int, latency_ms: float, workers: int, regions: int) -> dict:
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
            Sandbox(accounts=accounts, date=DAY, regions=region_list, seed_metrics_accounts=0,
                    state_dir=Path(tmp) / "sandbox") as sb:
        cfg = load_settings({"regions": region_list})
        # The retry mode the DAG configures (settings runner.retry_mode), not AwsAccess's default.
        access = AwsAccess.from_args(endpoint_url=sb.endpoint, aws_access_key_id="AKIABENCHADMIN000001",
                                     aws_secret_access_key="bench", external_id=sb.info["external_id"],
                                     session_name="bench-collection", retry_mode=cfg["collection"]["retry_mode"])
        opts = runner.Options.from_settings(cfg)
        if workers:
            opts = runner.Options(**{**opts.__dict__, "workers": workers})
        sb.set_faults(latency_ms=latency_ms)
        sb.reset_calls()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu0 = _cpu_seconds(sb.pid)
        own0 = _own_cpu()
        load0 = os.getloadavg()[0]
        started = time.perf_counter()
        run = runner.collect_org(access, Store(Path(tmp) / "store"), DAY, opts, run_id="bench")
        wall = time.perf_counter() - started
        server_cpu = _cpu_seconds(sb.pid) - cpu0
        own_cpu = _own_cpu() - own0
        load1 = os.getloadavg()[0]
        server_calls = sb.calls()["total"]
        calls, by_operation = access.total_calls(), dict(sorted(access.calls.items()))
        floor = bare_floor(sb, access, region_list[0])  # after the run's figures: its calls are not the run's
    bound = calls * latency_ms / 1000 / opts.workers
    return {
        "accounts": accounts,
        "collected": run["collected"],
        "regions": len(region_list),
        "workers": opts.workers,
        "latency_ms": latency_ms,
        "api_calls": calls,
        "sandbox_calls": server_calls,
        "calls_per_account": round(calls / max(1, run["collected"]), 1),
        "wall_s": round(wall, 2),
        "bound_s": round(bound, 2),
        "ratio": round(wall / bound, 2) if bound else None,
        "gaps": run["gaps"],
        "peak_rss_mb_before_run": round(rss_before / 1024, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "sandbox_cpu_s": round(server_cpu, 2),
        "sandbox_cpu_share_of_wall": round(server_cpu / wall, 2),
        "sandbox_cpu_ms_per_call": round(1000 * server_cpu / max(1, server_calls), 2),
        "collector_cpu_s": round(own_cpu, 2),
        "collector_cpu_ms_per_call": round(1000 * own_cpu / max(1, calls), 2),
        "cores": os.cpu_count(),
        "loadavg_start_end": [round(load0, 2), round(load1, 2)],
        "by_operation": by_operation,
        "bare_call_floor": floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500", help="comma-separated account counts")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=0, help="threads (default: settings runner.max_workers)")
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.latency_ms, args.workers, args.regions)))
        return
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--child", str(size), "--latency-ms", str(args.latency_ms),
                              "--workers", str(args.workers), "--regions", str(args.regions)],
                             capture_output=True, text=True, check=True, cwd=REPO)
        fig = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\n== {fig['accounts']} accounts ({fig['collected']} collected) x {fig['regions']} regions, "
              f"{fig['latency_ms']:.0f} ms latency, {fig['workers']} workers")
        print(f"api calls            {fig['api_calls']} (sandbox counted {fig['sandbox_calls']}), "
              f"{fig['calls_per_account']} per account")
        print(f"wall time            {fig['wall_s']} s; bound calls x latency / workers = {fig['bound_s']} s; "
              f"ratio {fig['ratio']}")
        print(f"peak RSS             {fig['peak_rss_mb']} MB (before the run: {fig['peak_rss_mb_before_run']} MB)")
        print(f"sandbox server CPU   {fig['sandbox_cpu_s']} s ({fig['sandbox_cpu_share_of_wall']:.0%} of wall), "
              f"{fig['sandbox_cpu_ms_per_call']} ms per call")
        print(f"collector CPU        {fig['collector_cpu_s']} s, {fig['collector_cpu_ms_per_call']} ms per call; "
              f"{fig['cores']} cores, load average {fig['loadavg_start_end'][0]} -> {fig['loadavg_start_end'][1]}")
        # The best wall time this machine allows at these CPU costs, even unloaded (see best_ratio).
        server_ms, client_ms = fig["sandbox_cpu_ms_per_call"], fig["collector_cpu_ms_per_call"]
        ratio = best_ratio(fig["latency_ms"], fig["workers"], fig["cores"], server_ms, client_ms)
        print(f"cpu floor            {server_ms + client_ms:.1f} ms of CPU per call (server + collector) on "
              f"{fig['cores']} cores, {max(server_ms, client_ms):.1f} ms in the busier process (one core) -> "
              f"wall >= {ratio * fig['bound_s']:.1f} s, ratio >= {ratio:.2f} on an idle machine")
        print(f"coverage gaps        {fig['gaps']}")
        print("calls by operation   " + ", ".join(f"{k}={v}" for k, v in fig["by_operation"].items()))
        # What botocore and the sandbox cost without our code: the collector's CPU per call above, against this.
        bare = fig["bare_call_floor"]
        bare_ratio = best_ratio(fig["latency_ms"], fig["workers"], fig["cores"], bare["server_ms_per_call"],
                                bare["client_ms_per_call"])
        print(f"bare-call floor      {bare['calls']} x guardduty.list_detectors on one cached client: "
              f"client {bare['client_ms_per_call']} ms, server {bare['server_ms_per_call']} ms CPU per call -> "
              f"ratio >= {bare_ratio:.2f} at {fig['workers']} workers, {fig['latency_ms']:.0f} ms latency, "
              f"{fig['cores']} cores")


if __name__ == "__main__":
    main()
