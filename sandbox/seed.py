"""Seed the emulated organization into moto, in-process, before the server accepts requests.

``plan_organization`` is pure (the same settings give the same accounts, ids, names and tags); ``seed`` applies
the plan to moto's backends directly, which is how 500 accounts seed in seconds rather than minutes of HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

from . import det
from .settings import HOME_REGION, SandboxSettings

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent / "resources"
JOINED_BASE = dt.datetime(2024, 1, 8, 9, 0, tzinfo=dt.UTC)


@cache
def resource(name: str) -> dict[str, Any]:
    """A JSON file from sandbox/resources."""
    return json.loads((RESOURCES / name).read_text(encoding="utf-8"))


@dataclass
class AccountPlan:
    """One member account as seeded."""

    index: int
    id: str
    name: str
    email: str
    ou: str
    environment: str
    owner: str
    team: str
    tags: dict[str, str]
    status: str = "ACTIVE"
    read_role: bool = True
    joined: dt.datetime = field(default=JOINED_BASE)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["joined"] = self.joined.isoformat()
        return out


@dataclass
class OrgPlan:
    """The seeded organization: management account, OUs and member accounts."""

    management_account_id: str
    ous: list[str]
    accounts: list[AccountPlan]
    ou_ids: dict[str, str] = field(default_factory=dict)
    root_id: str = ""
    organization_id: str = ""

    def by_id(self) -> dict[str, AccountPlan]:
        return {a.id: a for a in self.accounts}


def _account_id(seed: int, index: int, taken: set[str]) -> str:
    salt = 0
    while True:
        candidate = str(100000000000 + det.digest(seed, "account-id", index, salt) % 899999999999)
        if candidate not in taken:
            return candidate
        salt += 1


def plan_organization(settings: SandboxSettings) -> OrgPlan:
    """Decide every member account (id, name, OU, tags, status, read role) from the settings alone.

    :param settings: sandbox settings (account count, seed...).
    """
    data = resource("org.json")
    ous = data["organizational_units"]
    teams = data["teams"]
    owners = data["owners"]
    n = settings.accounts
    new_from = n - settings.new_accounts if n > settings.new_accounts else n
    suspended = set()
    if settings.suspended_accounts and new_from > 1:
        # Suspend accounts in the middle, never the first one and never a new one.
        step = max(1, new_from // (settings.suspended_accounts + 1))
        suspended = {min(new_from - 1, step * (k + 1)) for k in range(settings.suspended_accounts)} - {0}

    taken = {settings.management_account_id}
    hostile_names = data["hostile_account_names"]
    accounts: list[AccountPlan] = []
    used_names: set[str] = set()
    for i in range(n):
        account_id = _account_id(settings.seed, i, taken)
        taken.add(account_id)
        ou = ous[i % len(ous)]
        env = data["environments"][ou]
        team = teams[det.digest(settings.seed, "team", i) % len(teams)] if i >= len(teams) else teams[i]
        # Owners: a few people own several accounts each.
        owner = owners[det.digest(settings.seed, "owner", i) % len(owners)]
        if 1 <= i <= len(hostile_names):
            name = hostile_names[i - 1]
        else:
            name = f"{team['slug']}-{env}"
        base, k = name, 2
        while name in used_names:
            name = f"{base}-{k}"
            k += 1
        used_names.add(name)
        tags = {"Owner": owner, "Team": team["name"], "Environment": env}
        if i % 5 == 2:
            tags["Description"] = data["hostile_tags"]["Description"]
        if i % 7 == 3 or i == 0:
            prefix = data["hostile_tags"]["CostCenter"]
            tags["CostCenter"] = (prefix + "x" * 256)[:256]
        accounts.append(
            AccountPlan(
                index=i,
                id=account_id,
                name=name,
                email=f"aws-{i:04d}@example.com",
                ou=ou,
                environment=env,
                owner=owner,
                team=team["name"],
                tags=tags,
                status="SUSPENDED" if i in suspended else "ACTIVE",
                read_role=i < new_from,
                joined=JOINED_BASE + dt.timedelta(days=3 * i, minutes=det.integer(0, 600, settings.seed, "join", i)),
            )
        )
    return OrgPlan(management_account_id=settings.management_account_id, ous=list(ous), accounts=accounts)


def trust_policy(management_account_id: str, external_id: str | None) -> str:
    """The read role's trust policy: the management account, with an sts:ExternalId condition."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{management_account_id}:root"},
        "Action": "sts:AssumeRole",
    }
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _create_role(account_id: str, name: str, trust: str, description: str, policy: dict | None = None) -> None:
    from moto.iam.models import iam_backends

    iam = iam_backends[account_id]["global"]
    iam.create_role(
        role_name=name,
        assume_role_policy_document=trust,
        path="/",
        permissions_boundary=None,
        description=description,
        tags=[],
        max_session_duration="3600",
    )
    if policy:
        iam.put_role_policy(name, f"{name}Policy", json.dumps(policy))


def seed_organization(settings: SandboxSettings, plan: OrgPlan) -> None:
    """Create the Organization, OUs and member accounts (with tags, status, join time) in moto."""
    from moto.organizations import utils as org_utils
    from moto.organizations.models import organizations_backends

    mgmt = settings.management_account_id
    org = organizations_backends[mgmt]["aws"]
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

    def ident(size: int, *parts: object) -> str:
        return "".join(alphabet[det.digest(settings.seed, *parts, k) % len(alphabet)] for k in range(size))

    root_id = f"r-{ident(4, 'root')}"
    ou_counter = iter(range(1000))
    with (
        mock.patch.object(org_utils, "make_random_org_id", return_value=f"o-{ident(10, 'org')}"),
        mock.patch.object(org_utils, "make_random_root_id", return_value=root_id),
        mock.patch.object(org_utils, "make_random_ou_id",
                          side_effect=lambda root: f"ou-{root[2:]}-{ident(8, 'ou', next(ou_counter))}"),
    ):
        org.create_organization(region=HOME_REGION, FeatureSet="ALL")
        org.accounts[0].name = "management"
        org.accounts[0].email = "management@example.com"
        org.accounts[0].create_time = (JOINED_BASE - dt.timedelta(days=400)).replace(tzinfo=None)
        plan.organization_id = org.org.id
        plan.root_id = org.list_roots()["Roots"][0]["Id"]
        for ou in plan.ous:
            plan.ou_ids[ou] = org.create_organizational_unit(ParentId=plan.root_id, Name=ou)["OrganizationalUnit"]["Id"]
    ids = iter([a.id for a in plan.accounts])
    with mock.patch.object(org_utils, "make_random_account_id", side_effect=lambda: next(ids)):
        for account in plan.accounts:
            org.create_account(
                AccountName=account.name,
                Email=account.email,
                Tags=[{"Key": k, "Value": v} for k, v in account.tags.items()],
            )
    by_id = {a.id: a for a in org.accounts}
    for account in plan.accounts:
        fake = by_id[account.id]
        fake.parent_id = plan.ou_ids[account.ou]
        fake.create_time = account.joined.replace(tzinfo=None)
        if account.status == "SUSPENDED":
            fake.status = fake.state = "SUSPENDED"


def seed_roles(settings: SandboxSettings, plan: OrgPlan) -> None:
    """Read role (with ExternalId) in onboarded accounts; StackSet administration and execution roles."""
    baseline = resource("baseline.json")
    mgmt = settings.management_account_id
    cfn_trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudformation.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    _create_role(
        mgmt,
        settings.stackset_admin_role,
        cfn_trust,
        "Lets CloudFormation StackSets assume the execution role in target accounts",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Resource": f"arn:aws:iam::*:role/{settings.stackset_execution_role}",
                }
            ],
        },
    )
    for account in plan.accounts:
        _create_role(
            account.id,
            settings.stackset_execution_role,
            trust_policy(mgmt, None),
            "StackSet execution role",
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
        )
        if account.read_role:
            _create_role(
                account.id,
                settings.read_role_name,
                trust_policy(mgmt, settings.external_id),
                "Cross-account read access for governance",
                baseline["read_role_policy"],
            )


def seed_central(settings: SandboxSettings) -> None:
    """Central resources in the management account: log bucket, event bus, SES identities, Config aggregator."""
    from moto.config.models import config_backends
    from moto.events.models import events_backends
    from moto.s3.models import s3_backends
    from moto.ses.models import ses_backends

    mgmt = settings.management_account_id
    s3_backends[mgmt]["aws"].create_bucket(settings.central_bucket, HOME_REGION)
    events_backends[mgmt][HOME_REGION].create_event_bus(
        name=settings.central_event_bus, description="Governance events forwarded from member accounts"
    )
    ses = ses_backends[mgmt][HOME_REGION]
    ses.verify_email_identity(settings.ses_sender)
    ses.verify_domain(settings.ses_domain)
    config_backends[mgmt][HOME_REGION].put_configuration_aggregator(
        {
            "ConfigurationAggregatorName": settings.config_aggregator,
            "OrganizationAggregationSource": {
                "RoleArn": f"arn:aws:iam::{mgmt}:role/service-role/AWSConfigRoleForOrganizations",
                "AllAwsRegions": True,
            },
        }
    )


def seed_baseline(settings: SandboxSettings, account_id: str) -> None:
    """The governance baseline of an account onboarded before the sandbox started: trail, Config recorder and
    delivery channel in every region, aggregation authorization for the management account, events forwarding.

    :param account_id: the member account.
    """
    from moto.cloudtrail.models import cloudtrail_backends
    from moto.config.models import config_backends
    from moto.events.models import events_backends

    baseline = resource("baseline.json")
    mgmt = settings.management_account_id
    # baseline.yaml's ForwardRole: EventBridge of this account assumes it to put events on the central bus.
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}}]}
    central_bus = f"arn:aws:events:{HOME_REGION}:{mgmt}:event-bus/{settings.central_event_bus}"
    _create_role(account_id, baseline["forward_role_name"], json.dumps(trust), "Forward governance events",
                 {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "events:PutEvents",
                                                          "Resource": central_bus}]})
    trail = cloudtrail_backends[account_id][HOME_REGION].create_trail(
        name=baseline["trail_name"],
        bucket_name=settings.central_bucket,
        s3_key_prefix=None,  # as baseline.yaml deploys the trail: no S3KeyPrefix
        sns_topic_name=None,
        is_global=True,
        is_multi_region=True,
        log_validation=True,
        is_org_trail=False,
        cw_log_group_arn=None,
        cw_role_arn=None,
        kms_key_id=None,
        tags_list=[],
    )
    trail.start_logging()
    for region in settings.regions:
        config = config_backends[account_id][region]
        config.put_configuration_recorder(
            {
                "name": baseline["recorder_name"],
                "roleARN": f"arn:aws:iam::{account_id}:role/{baseline['config_role_name']}",
                "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": region == HOME_REGION},
            }
        )
        # As baseline.yaml deploys it (ConfigDeliveryChannel: bucket, no S3KeyPrefix), so that accounts seeded as
        # onboarded deliver where accounts onboarded through the template do.
        config.put_delivery_channel({"name": baseline["delivery_channel_name"],
                                     "s3BucketName": settings.central_bucket})
        config.start_configuration_recorder(baseline["recorder_name"])
        config.put_aggregation_authorization(mgmt, HOME_REGION, [])
        events = events_backends[account_id][region]
        events.put_rule(
            name=baseline["events_rule_name"],
            description="Forward governance events to the central bus",
            event_pattern=json.dumps(baseline["events_rule_pattern"]),
            state="ENABLED",
        )
        bus_arn = f"arn:aws:events:{HOME_REGION}:{mgmt}:event-bus/{settings.central_event_bus}"
        # As baseline.yaml's ForwardRule: the target puts events with the forwarding role (the central bus's policy
        # admits only that role).
        events.put_targets(baseline["events_rule_name"], None, [
            {"Id": "central-bus", "Arn": bus_arn,
             "RoleArn": f"arn:aws:iam::{account_id}:role/{baseline['forward_role_name']}"}])


def seed_bus_policy(settings: SandboxSettings, plan: OrgPlan) -> None:
    """The central bus's policy, as the central stack sets it: any account of the organization may put events."""
    from moto.events.models import events_backends

    mgmt = settings.management_account_id
    bus = f"arn:aws:events:{HOME_REGION}:{mgmt}:event-bus/{settings.central_event_bus}"
    statement = {"Sid": "organization-put-events", "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
                 "Resource": bus, "Condition": {
                     "StringEquals": {"aws:PrincipalOrgID": plan.organization_id},
                     "ArnLike": {"aws:PrincipalArn":
                                 f"arn:aws:iam::*:role/{resource('baseline.json')['forward_role_name']}"}}}
    events_backends[mgmt][HOME_REGION].put_permission(settings.central_event_bus, "", "", "", {},
                                                      json.dumps({"Version": "2012-10-17", "Statement": [statement]}))


def seed(settings: SandboxSettings) -> OrgPlan:
    """Seed moto with the whole organization; returns the plan (with OU and root ids filled in).

    :param settings: sandbox settings.
    """
    plan = plan_organization(settings)
    seed_organization(settings, plan)
    seed_roles(settings, plan)
    seed_central(settings)
    seed_bus_policy(settings, plan)
    for account in plan.accounts:
        if account.read_role and account.status == "ACTIVE":
            seed_baseline(settings, account.id)
    return plan
