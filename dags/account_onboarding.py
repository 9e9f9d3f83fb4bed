"""
### Account onboarding: deploy the governance baseline to member accounts with one CloudFormation StackSet

Triggered by the admin team from the UI form (or `airflow dags trigger -c`, or the REST API) with the accounts to
bring under governance, and by `governance_events` for an account created in (or moved into) an OU listed in
`include/config/onboarding.yaml` `ou_defaults`: run id `onboard_new_account__<account>`, conf = that OU's defaults,
checked by the same Params as the form. The baseline (include/templates/cloudformation/baseline.yaml) puts in every
account a multi-region CloudTrail trail to the central bucket, AWS Config with an aggregation authorization, the
cross-account read role (ExternalId) and an EventBridge rule forwarding security events to the central bus.

1. **validate_request**: the form's values, without any AWS call: 12-digit unique ids, known regions including
   the global one, a valid e-mail, environment, permission model; then the inventory (refuses accounts already
   onboarded at this baseline version unless `force`); then Organizations (refuses accounts outside the
   organization, not ACTIVE, or the admin/management account). Refusals name the field and the value.
2. **plan_deployment**: what exists (central stack, StackSet and its version, stack instances) and what to do;
   instances already CURRENT are skipped. With `enable_guardduty` / `enable_macie`, new instances in an account and
   region that already has a detector / Macie session (read role) get "false" (one per account and region). The
   plan is logged; with `dry_run` the run stops here.
3. **ensure_central_stack**, **ensure_stackset**: create or update idempotently; the StackSet records the
   baseline version (tag, description, parameter); a newer version updates every existing instance.
4. **start_operations**: ONE `CreateStackInstances` operation for all new accounts x regions, plus one
   `UpdateStackInstances` for OUTDATED instances, with the form's failure tolerance and concurrency.
5. **wait_for_operations**: a reschedule-mode sensor (no worker slot held between pokes) logging each instance's
   status. If instances fail, it fails listing account, region and reason; instances that succeeded stay, and a
   rerun skips them.
6. **verify_account** (mapped over batches of accounts, at most `collection.max_mapped_tasks` tasks, one account
   per task when there are fewer): through each account's read role, the trail logs, the recorder records, the
   aggregation authorization and the forwarding rule exist.
7. **register_delegated_admin** (form option `delegated_admin`): the admin account becomes the GuardDuty and Macie
   delegated administrator in the requested regions; after trying all, it fails naming each region not registered.
   The other threat options (`enable_guardduty`, `enable_macie`, `findings_import_role`) are template parameters of
   the run's new stack instances (docs/threats.md).
8. **record_inventory**: one `inventory` row per account (owner, team, environment, version, verification);
   updates the `awsgov_inventory` asset. **check_verification** fails the run if an account did not verify.

Rerunning for onboarded accounts needs `force` and changes nothing in AWS (all instances CURRENT).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, PokeReturnValue, dag, get_current_context, task

from include.awsgov.airflow_conn import AWS_POOL, DEFAULT_ARGS, ONBOARDED_ACCOUNTS_ASSET, fail_now
from include.awsgov.onboarding.form import config, param_specs

SENSOR = config()["sensor"]
log = logging.getLogger(__name__)


def _results(mapped) -> list[dict]:
    """Materialize a mapped task's results (a list per batch) by index, flattened (iterating probes one past the
    end and logs a 404)."""
    return [result for i in range(len(mapped)) for result in mapped[i]]


def _batches(account_ids: list[str]) -> list[list[str]]:
    """The accounts to verify, in batches: at most ``collection.max_mapped_tasks`` verify_account tasks."""
    from include.awsgov.airflow_conn import settings
    from include.awsgov.core.batches import batches

    return batches(account_ids, settings()["collection"]["max_mapped_tasks"])



@dag(
    dag_id="account_onboarding",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["governance", "onboarding", "stacksets"],
    params={name: Param(**spec) for name, spec in param_specs().items()},
    default_args=DEFAULT_ARGS,
)
def account_onboarding():
    @task(pool=AWS_POOL, retries=0)
    def validate_request(params: dict | None = None) -> dict:
        """Refuse bad input (static checks, then the inventory, then Organizations); return the request."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.core import tables
        from include.awsgov.core.store import Store
        from include.awsgov.onboarding import workflow

        cfg = settings()
        _, version = workflow.load_template("baseline")
        inventory = Store(cfg["store_url"]).read(tables.ONBOARDED_ACCOUNTS_TABLE, schema=tables.ONBOARDED_ACCOUNTS)
        try:
            return workflow.validate_request(params or {}, cfg, access=aws_access(cfg, get_current_context()),
                                               inventory=inventory, version=version)
        except workflow.InvalidRequest as exc:
            fail_now(exc)

    @task(pool=AWS_POOL)
    def plan_deployment(request: dict) -> dict:
        """Read what exists and decide what to create and update; log the plan."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.onboarding import workflow

        cfg = settings()
        try:
            return workflow.plan_for_request(aws_access(cfg, get_current_context()), cfg, request)
        except ValueError as exc:
            fail_now(exc)

    @task.short_circuit
    def check_dry_run(request: dict) -> bool:
        """Stop here (downstream tasks skipped, run successful) when the form asked for a dry run."""
        if request["dry_run"]:
            log.info("dry run: the plan above was not applied; nothing was created or changed")
        return not request["dry_run"]

    @task(pool=AWS_POOL)
    def ensure_central_stack(request: dict) -> dict:
        """Create or update the admin account's central stack; return its outputs (names and ARNs only)."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.onboarding import stacksets, workflow

        cfg = settings()
        access = aws_access(cfg, get_current_context())
        cf = access.client("cloudformation")
        name = workflow.config()["central_stack_name"]
        body, version = workflow.load_template("central")
        values = workflow.central_values(cfg, admin_account_id=request["admin_account_id"],
                                           organization_id=request["organization_id"])
        values.update(workflow.central_create_flags(access, values, stacksets.describe_stack(cf, name)))
        return stacksets.ensure_stack(cf, name, template_body=body, version=version, values=values)["outputs"]

    @task(pool=AWS_POOL)
    def ensure_stackset(request: dict, central: dict) -> dict:
        """Create the StackSet or update it to the template's version (one operation, returned for waiting)."""
        from include.awsgov.airflow_conn import aws_access, external_id, settings
        from include.awsgov.onboarding import stacksets, workflow

        cfg = settings()
        context = get_current_context()
        secret = external_id()
        if not secret:
            fail_now(ValueError("no ExternalId: set the Variable awsgov_external_id (the read role requires one)"))
        body, version = workflow.load_template("baseline")
        access = aws_access(cfg, context)
        values = workflow.stack_set_values(cfg, admin_account_id=request["admin_account_id"],
                                             central_outputs=central, external_id=secret)
        admin_role = access.role_arn(request["admin_account_id"], cfg["stackset"]["admin_role_name"])
        return stacksets.ensure_stack_set(
            access.client("cloudformation"), cfg["stackset"]["name"], template_body=body, version=version,
            values=values, permission_model=request["permission_model"], admin_role_arn=admin_role,
            execution_role_name=cfg["stackset"]["execution_role_name"],
            preferences=workflow.operation_preferences(request), call_as=request["call_as"],
            op_id=stacksets.operation_id(context["dag"].dag_id, context["run_id"], "update-stackset"))

    @task(pool=AWS_POOL)
    def start_operations(request: dict, plan: dict, stackset: dict) -> list[dict]:
        """Queue the run's operations (StackSet update, ONE create for all new instances, ONE update for OUTDATED
        ones) and start the first that can start; return the steps for the sensor."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.onboarding import stacksets, workflow

        cfg = settings()
        context = get_current_context()
        steps = workflow.operation_steps(request, plan, stackset["operation_id"],
                                           (context["dag"].dag_id, context["run_id"]))
        if steps:
            cf = aws_access(cfg, context).client("cloudformation")
            try:
                stacksets.drive_operations(cf, cfg["stackset"]["name"], steps, call_as=request["call_as"])
            except stacksets.StackSetOperationFailed as exc:
                fail_now(exc)
        return steps

    @task.sensor(pool=AWS_POOL, mode="reschedule", poke_interval=SENSOR["poke_interval_seconds"],
                 exponential_backoff=True, max_wait=timedelta(seconds=SENSOR["max_wait_seconds"]),
                 timeout=SENSOR["timeout_seconds"])
    def wait_for_operations(steps: list[dict], request: dict) -> PokeReturnValue:
        """Poke the operations (slot released between pokes), starting each queued one when its turn comes; fail
        listing account, region and reason. When done, hands the accounts over to verification."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.onboarding import stacksets

        if not steps:
            log.info("no StackSet operation to wait for: every instance was already CURRENT")
            return PokeReturnValue(is_done=True, xcom_value=_batches(request["account_ids"]))
        cfg = settings()
        cf = aws_access(cfg, get_current_context()).client("cloudformation")
        try:
            progress = stacksets.drive_operations(cf, cfg["stackset"]["name"], steps, call_as=request["call_as"])
        except stacksets.StackSetOperationFailed as exc:
            fail_now(exc)
        return PokeReturnValue(is_done=progress.done,
                               xcom_value=_batches(request["account_ids"]) if progress.done else None)

    @task(pool=AWS_POOL, map_index_template="{{ account_label }}")
    def verify_account(account_ids: list[str], request: dict, central: dict) -> list[dict]:
        """Check each account of the batch through its read role: trail, recorder, aggregation authorization,
        forwarding rule."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.core.batches import batch_label, each
        from include.awsgov.onboarding import workflow

        context = get_current_context()
        context["account_label"] = batch_label([{"account_id": a} for a in account_ids], name=None)
        access = aws_access(settings(), context)
        verified, failures = each(account_ids, lambda account_id: workflow.verify_account(
            access, account_id, request["regions"], global_region=request["global_region"],
            admin_account_id=request["admin_account_id"], central_bus_arn=central["CentralEventBusArn"]),
            lambda account_id: f"account {account_id}")
        if failures:
            raise RuntimeError("; ".join(failures))
        return verified

    @task(outlets=[ONBOARDED_ACCOUNTS_ASSET])
    def record_inventory(request: dict, verifications: list[dict], steps: list[dict]) -> dict:
        """Write one inventory row per account (its own chunk of the day) and update the inventory asset."""
        from include.awsgov.airflow_conn import partition_day, settings
        from include.awsgov.core import accounts
        from include.awsgov.core.store import Store
        from include.awsgov.onboarding import workflow

        cfg = settings()
        context = get_current_context()
        store = Store(cfg["store_url"])
        previous = accounts.onboarded_accounts(store)
        rows = workflow.inventory_rows(request, _results(verifications), version=request["version"],
                                         stack_set_name=cfg["stackset"]["name"],
                                         operation_ids=[step["op_id"] for step in steps],
                                         previous=previous, now=datetime.now(UTC))
        return workflow.write_inventory(store, partition_day(context), rows)

    @task(pool=AWS_POOL)
    def register_delegated_admin(request: dict) -> dict:
        """With the form's delegated_admin option, register the admin account as GuardDuty and Macie delegated
        administrator in the requested regions (management-account calls); otherwise do nothing. Fails, after
        trying every region, if any region was not registered."""
        from include.awsgov.airflow_conn import aws_access, settings
        from include.awsgov.onboarding import threat_options

        if not request.get("delegated_admin"):
            return {}
        access = aws_access(settings(), get_current_context())
        try:
            return threat_options.register_delegated_admin(access, request["regions"], request["admin_account_id"])
        except threat_options.DelegatedAdminFailed as exc:
            fail_now(exc)  # every region was tried; the message names each failed one

    @task(retries=0)
    def check_verification(verifications: list[dict]) -> None:
        """Fail the run if any account did not verify (its inventory row says verify_failed)."""
        from include.awsgov.onboarding import workflow

        failed = workflow.verification_failures(_results(verifications))
        if failed:
            fail_now(RuntimeError(f"verification failed for {len(failed)} account(s): " + "; ".join(failed)))

    request = validate_request()
    plan = plan_deployment(request)
    gate = check_dry_run(request)
    central = ensure_central_stack(request)
    stackset = ensure_stackset(request, central)
    operations = start_operations(request, plan, stackset)
    deployed = wait_for_operations(operations, request)
    verifications = verify_account.partial(request=request, central=central).expand(account_ids=deployed)
    plan >> gate >> central
    gate >> register_delegated_admin(request)
    record_inventory(request, verifications, operations) >> check_verification(verifications)


account_onboarding()
