"""Command line: ``python -m sandbox {start,stop,serve,status,faults,date,calls,truth}``.

    python -m sandbox start --accounts 12 --port 5055 [--state-dir .sandbox] [--seed-metrics-accounts N] [--date D]
    python -m sandbox faults --throttle-rate 0.3 --latency-ms 20 --deny-assume 111122223333
    python -m sandbox faults --clear
    python -m sandbox date 2026-11-23
    python -m sandbox calls [--reset]
    python -m sandbox quotas [--scale 0.5 | --off | --on]
    python -m sandbox stop
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from .runner import QUOTA_SCALE_ENV, Sandbox, SandboxError


def _settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accounts", type=int, default=12, help="member accounts to seed (default 12)")
    p.add_argument("--port", type=int, default=5055, help="port on 127.0.0.1 (0: a free port)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--state-dir", default=".sandbox", help="where sandbox.json and sandbox.log go")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--date", help="the sandbox's today, YYYY-MM-DD (default: real UTC date)")
    p.add_argument("--regions", help="comma-separated regions with Config data")
    p.add_argument("--read-role-name", help="cross-account read role (default GovernanceReadRole)")
    p.add_argument("--external-id", help="ExternalId of the read role (default: derived from the seed)")
    p.add_argument("--seed-metrics-accounts", type=int, help="metrics for the first N accounts (default all <= 50)")
    p.add_argument("--new-accounts", type=int, default=2, help="last N member accounts without the read role")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="multiply timed transitions (TA refresh, StackSet operations); e.g. 0.5 for tests")
    p.add_argument("--profile", choices=("default", "realistic"), default="default",
                   help="seeding: default (small) or realistic (100-300 Config rules per account and region, ...)")
    p.add_argument("--quota-scale", type=float,
                   help="multiply the request-rate quotas (docs/quotas.md); 1 = AWS's rates, 0 = off (default: "
                        "$SANDBOX_QUOTA_SCALE, else 1)")


def _sandbox_from(args: argparse.Namespace) -> Sandbox:
    return Sandbox(
        accounts=args.accounts, port=args.port, state_dir=args.state_dir, seed=args.seed, date=args.date,
        regions=args.regions.split(",") if args.regions else None, read_role_name=args.read_role_name,
        external_id=args.external_id, seed_metrics_accounts=args.seed_metrics_accounts, host=args.host,
        time_scale=args.time_scale, new_accounts=args.new_accounts, quota_scale=args.quota_scale,
        profile=args.profile,
    )


def summary(info: dict, seconds: float | None = None) -> str:
    accounts = info.get("accounts", [])
    suspended = [a["id"] for a in accounts if a.get("status") != "ACTIVE"]
    no_role = [a["id"] for a in accounts if not a.get("read_role")]
    lines = [
        f"sandbox ready at {info['endpoint']} (pid {info['pid']})" + (f" in {seconds:.1f}s" if seconds else ""),
        f"  management account {info['management_account_id']}, organization {info['organization_id']}",
        f"  {len(accounts)} member accounts; read role {info['read_role_name']} missing in {no_role or 'none'}; "
        f"suspended {suspended or 'none'}",
        f"  regions {', '.join(info['regions'])}; sandbox date {info['date']}",
        f"  external id {info['external_id']}; central bucket {info['central_bucket']}; "
        f"bus {info['central_event_bus']}; SES sender {info['ses_sender']}",
        f"  credentials: any key (e.g. testing/testing) = management account; endpoint_url={info['endpoint']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _settings_args(sub.add_parser("start", help="start in the background, wait until ready"))
    _settings_args(sub.add_parser("serve", help="run in the foreground"))
    for name in ("stop", "status", "calls", "truth", "date", "faults", "quotas"):
        p = sub.add_parser(name)
        p.add_argument("--state-dir", default=".sandbox")
        if name == "calls":
            p.add_argument("--reset", action="store_true")
        if name == "truth":
            p.add_argument("--date")
            p.add_argument("--sections")
            p.add_argument("--account")
        if name == "quotas":
            p.add_argument("--scale", type=float, help="multiply every rate and burst (0 = off)")
            p.add_argument("--off", action="store_true", help="switch the quota model off")
            p.add_argument("--on", action="store_true", help="switch the quota model on")
        if name == "date":
            p.add_argument("date", nargs="?", help="YYYY-MM-DD, or 'real' for the real UTC date")
        if name == "faults":
            p.add_argument("--latency-ms", type=float)
            p.add_argument("--throttle-rate", type=float)
            p.add_argument("--throttle-service", action="append", help="limit throttling to this service")
            p.add_argument("--deny-assume", action="append", metavar="ACCOUNT")
            p.add_argument("--no-support", action="append", metavar="ACCOUNT")
            p.add_argument("--no-ta-org-view", action="store_true",
                           help="the Trusted Advisor API refuses the organization view (AccessDeniedException)")
            p.add_argument("--stackset-fail", action="append", metavar="ACCOUNT[:REGION]")
            p.add_argument("--stackset-failure-reason")
            p.add_argument("--replace", action="store_true", help="replace all faults instead of merging")
            p.add_argument("--clear", action="store_true")
    args = parser.parse_args(argv)

    try:
        if args.command == "serve":
            from .server import serve
            from .settings import SandboxSettings

            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            kwargs = dict(accounts=args.accounts, seed=args.seed, date=args.date,
                          seed_metrics_accounts=args.seed_metrics_accounts, time_scale=args.time_scale,
                          new_accounts=args.new_accounts, profile=args.profile,
                          quota_scale=args.quota_scale if args.quota_scale is not None else
                          float(os.environ.get(QUOTA_SCALE_ENV) or 1.0))
            if args.regions:
                kwargs["regions"] = args.regions.split(",")
            if args.read_role_name:
                kwargs["read_role_name"] = args.read_role_name
            if args.external_id:
                kwargs["external_id"] = args.external_id
            serve(SandboxSettings(**kwargs), host=args.host, port=args.port, state_dir=Path(args.state_dir))
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # skip tearing down moto's object graph: the state file and socket are already released
        if args.command == "start":
            t0 = time.monotonic()
            sb = _sandbox_from(args).start(detach=True)
            print(summary(sb.info, time.monotonic() - t0))
            print(f"  state {sb.state_file}; log {sb.log_file}; stop with: python -m sandbox stop --state-dir "
                  f"{args.state_dir}")
            return 0
        if args.command == "stop":
            try:
                sb = Sandbox.attach(args.state_dir)
            except SandboxError as exc:
                print(f"nothing to stop: {exc}")
                (Path(args.state_dir) / "sandbox.json").unlink(missing_ok=True)
                return 0
            pid = sb.pid
            sb.stop()
            print(f"sandbox pid {pid} stopped")
            return 0
        sb = Sandbox.attach(args.state_dir)
        if args.command == "status":
            print(summary(sb.refresh_info()))
        elif args.command == "calls":
            if args.reset:
                sb.reset_calls()
            print(json.dumps(sb.calls(), indent=2))
        elif args.command == "truth":
            print(json.dumps(sb.truth(args.date, args.sections.split(",") if args.sections else None,
                                      args.account.split(",") if args.account else None), indent=2,
                             ensure_ascii=False))
        elif args.command == "quotas":
            enabled = False if args.off else True if args.on else None
            if args.scale is not None or enabled is not None:
                state = sb.set_quotas(scale=args.scale, enabled=enabled)
            else:
                state = sb.quotas()
            print(json.dumps({k: state[k] for k in ("enabled", "scale", "active")}, indent=2))
            if args.date:
                print(sb.set_date(None if args.date == "real" else args.date))
            else:
                print(sb.today())
        elif args.command == "faults":
            if args.clear:
                print(json.dumps(sb.clear_faults(), indent=2))
                return 0
            changes: dict = {}
            if args.latency_ms is not None:
                changes["latency_ms"] = args.latency_ms
            if args.throttle_rate is not None:
                changes["throttle_rate"] = args.throttle_rate
            if args.throttle_service:
                changes["throttle_services"] = args.throttle_service
            if args.deny_assume:
                changes["deny_assume_accounts"] = args.deny_assume
            if args.no_support:
                changes["no_support_accounts"] = args.no_support
            if args.no_ta_org_view:
                changes["no_ta_organization_view"] = True
            if args.stackset_fail:
                changes["stackset_fail_instances"] = [x.split(":", 1) if ":" in x else x for x in args.stackset_fail]
            if args.stackset_failure_reason:
                changes["stackset_failure_reason"] = args.stackset_failure_reason
            result = sb.set_faults(changes) if args.replace else sb.update_faults(**changes)
            print(json.dumps(result, indent=2))
        return 0
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
