"""Benchmark of onboarding at scale against the sandbox: StackSet operations, API calls and wall time.

Starts its own sandbox with enough accounts without the read role, then runs the same steps as the
``account_onboarding`` DAG's tasks (the library functions they call, in the same order, without Airflow) for
``--accounts`` accounts x ``--regions`` regions, and prints:

- StackSet operations started (the create is ONE operation, whatever the number of accounts);
- API calls per step and in total (the access layer's count, and the sandbox's own counter);
- wall time per step and in total, including the wait for the operation;
- whether every account verified through its new read role.

    .venv/bin/python bench/workflow.py [--accounts 100] [--regions 3] [--workers 16] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1", "eu-central-1", "us-west-2"]


def run(accounts: int, regions: int, workers: int, latency_ms: float) -> dict:
    """Onboard ``accounts`` new accounts into ``regions`` regions on a fresh sandbox; return the figures."""
    from include.awsgov.core.aws import AwsAccess
    from include.awsgov.core.settings import load_settings
    from include.awsgov.core.store import Store
    from include.awsgov.onboarding import stacksets, workflow
    from sandbox.runner import Sandbox

    region_list = REGIONS[:regions]
    steps: dict[str, dict] = {}
    # The sandbox seeds a few onboarded accounts (one SUSPENDED) before the new ones.
    with tempfile.TemporaryDirectory(prefix="bench-onboarding-") as tmp, \
            Sandbox(accounts=accounts + 3, new_accounts=accounts, regions=region_list,
                    seed_metrics_accounts=0, state_dir=Path(tmp) / "sandbox") as sb:
        new = [a["id"] for a in sb.info["accounts"] if not a.get("read_role") and a["status"] == "ACTIVE"][:accounts]
        cfg = load_settings({"regions": region_list, "store_url": str(Path(tmp) / "store")})
        access = AwsAccess.from_args(endpoint_url=sb.endpoint, aws_access_key_id="AKIABENCHADMIN000001",
                                     aws_secret_access_key="bench", external_id=sb.info["external_id"],
                                     session_name="bench-onboarding", read_role_name=cfg["read_role_name"])
        store = Store(cfg["store_url"])
        cf = access.client("cloudformation")
        name = cfg["stackset"]["name"]
        sb.set_faults(latency_ms=latency_ms)
        sb.reset_calls()
        started = time.perf_counter()

        def step(label, fn):
            calls0, t0 = access.total_calls(), time.perf_counter()
            out = fn()
            steps[label] = {"calls": access.total_calls() - calls0, "seconds": time.perf_counter() - t0}
            return out

        _, version = workflow.load_template("baseline")
        params = {"account_ids": new, "regions": region_list, "owner_email": "bench@example.com",
                  "team": "Bench", "environment": "dev", "max_concurrency_percent": 100}
        request = step("validate_request", lambda: workflow.validate_request(
            params, cfg, access=access, inventory=None, version=version))
        plan = step("plan_deployment", lambda: workflow.plan_deployment(
            request, version=version, central_stack=stacksets.describe_stack(cf, "governance-central"),
            stack_set=stacksets.describe_stack_set(cf, name), instances=[]))

        def central():
            body, v = workflow.load_template("central")
            values = workflow.central_values(cfg, admin_account_id=request["admin_account_id"],
                                               organization_id=request["organization_id"])
            values.update(workflow.central_create_flags(access, values, None))
            return stacksets.ensure_stack(cf, "governance-central", template_body=body, version=v,
                                          values=values)["outputs"]

        outputs = step("ensure_central_stack", central)
        body, _ = workflow.load_template("baseline")
        values = workflow.stack_set_values(cfg, admin_account_id=request["admin_account_id"],
                                             central_outputs=outputs, external_id=sb.info["external_id"])
        step("ensure_stackset", lambda: stacksets.ensure_stack_set(
            cf, name, template_body=body, version=version, values=values, preferences={}))
        op_ids = step("start_operations", lambda: [
            stacksets.create_stack_instances(cf, name, g["accounts"], g["regions"],
                                             workflow.operation_preferences(request, g["regions"]),
                                             op_id=stacksets.operation_id("bench", "create", str(i)))
            for i, g in enumerate(plan["create"])])

        def wait():
            pokes = 0
            while True:
                pokes += 1
                if stacksets.poke_operations(cf, name, op_ids).done:
                    return pokes
                time.sleep(1.0)  # the DAG's sensor reschedules instead; here only the total matters

        pokes = step("wait_for_operations", wait)
        logging.getLogger("include.awsgov").setLevel(logging.WARNING)

        def verify():
            with ThreadPoolExecutor(workers) as pool:
                return list(pool.map(lambda a: workflow.verify_account(
                    access, a, region_list, global_region=cfg["home_region"],
                    admin_account_id=request["admin_account_id"], central_bus_arn=outputs["CentralEventBusArn"]),
                    new))

        checks = step("verify_account", verify)
        rows = workflow.inventory_rows(request, checks, version=version, stack_set_name=name,
                                         operation_ids=op_ids, previous={}, now=dt.datetime.now(dt.UTC))
        step("record_inventory", lambda: workflow.write_inventory(store, dt.date.today(), rows))
        wall = time.perf_counter() - started
        server = sb.calls()
    by_action = {}
    for row in server["calls"]:
        by_action[row["action"]] = by_action.get(row["action"], 0) + row["count"]
    return {
        "accounts": len(new), "regions": len(region_list), "instances": len(new) * len(region_list),
        "stackset_operations": len(op_ids), "create_stack_instances_calls": by_action.get("CreateStackInstances", 0),
        "api_calls": access.total_calls(), "sandbox_calls": server["total"], "pokes": pokes,
        "wall_seconds": wall, "verified": sum(c["ok"] for c in checks), "steps": steps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--regions", type=int, default=3)
    parser.add_argument("--workers", type=int, default=16, help="threads verifying accounts (mapped tasks in Airflow)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sandbox latency added to every call")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    figures = run(args.accounts, args.regions, args.workers, args.latency_ms)
    print(f"onboarding {figures['accounts']} accounts x {figures['regions']} regions = {figures['instances']} "
          f"stack instances (latency {args.latency_ms:g} ms/call)")
    print(f"  StackSet operations started: {figures['stackset_operations']} "
          f"(CreateStackInstances calls seen by the sandbox: {figures['create_stack_instances_calls']})")
    print(f"  API calls: {figures['api_calls']} (sandbox counted {figures['sandbox_calls']}), "
          f"{figures['api_calls'] / max(figures['accounts'], 1):.1f} per account")
    print(f"  wall time: {figures['wall_seconds']:.1f} s ({figures['pokes']} operation polls)")
    print(f"  verified: {figures['verified']}/{figures['accounts']} accounts")
    for label, step in figures["steps"].items():
        print(f"    {label:22s} {step['calls']:6d} calls {step['seconds']:8.2f} s")
    return 0 if figures["verified"] == figures["accounts"] else 1


if __name__ == "__main__":
    sys.exit(main())
