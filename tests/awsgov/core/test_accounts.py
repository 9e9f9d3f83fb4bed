"""Accounts: Organizations (in-process moto) merged with the onboarding inventory, written to the ACCOUNTS table."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from moto import mock_aws

from include.awsgov.core import accounts, tables
from include.awsgov.core.aws import AwsAccess
from include.awsgov.core.store import Store

TEST_DAY = dt.date(2026, 11, 23)
TEST_TAGS = {"Owner": "alice@example.com", "Team": "<b>Payments</b>", "Environment": "prod"}


@pytest.fixture
def org(monkeypatch, tmp_path):
    """An organization with OUs Prod (nested OU Prod/Core) and Dev, four members, one of them closed."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        access = AwsAccess.from_args(region="us-east-1")
        client = access.client("organizations")
        client.create_organization(FeatureSet="ALL")
        root = client.list_roots()["Roots"][0]["Id"]
        prod = client.create_organizational_unit(ParentId=root, Name="Prod")["OrganizationalUnit"]["Id"]
        core = client.create_organizational_unit(ParentId=prod, Name="Core")["OrganizationalUnit"]["Id"]
        dev = client.create_organizational_unit(ParentId=root, Name="Dev")["OrganizationalUnit"]["Id"]
        ids = {}
        for name, parent, tags in [("payments", prod, TEST_TAGS), ("core", core, {}), ("dev", dev, {"env": "dev"}),
                                   ("gone", dev, {})]:
            status = client.create_account(Email=f"{name}@example.com", AccountName=name,
                                           Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            account_id = status["CreateAccountStatus"]["AccountId"]
            client.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
            ids[name] = account_id
        client.close_account(AccountId=ids["gone"])
        yield {"access": access, "ids": ids, "store": Store(tmp_path / "store"),
               "management": client.describe_organization()["Organization"]["MasterAccountId"]}


def _inventory(store: Store, day: str, account_id: str, owner: str, version: str, onboarded_at: str) -> None:
    row = {"account_id": account_id, "owner_email": owner, "team": "Core Team", "environment": "prod",
           "regions": ["us-east-1"], "baseline_version": version, "stackset_name": "governance-baseline",
           "operation_id": "op-1", "onboarded_at": pd.Timestamp(onboarded_at, tz="UTC"),
           "verified_at": pd.Timestamp(onboarded_at, tz="UTC"), "verification_json": "{}", "status": "onboarded"}
    store.write("inventory", day, pd.DataFrame([row]), chunk=account_id, schema=tables.ONBOARDED_ACCOUNTS)


def _by_id(rows):
    return {r["account_id"]: r for r in rows}


def test_collect_accounts_includes_management_and_parent_ou_names(org):
    rows = _by_id(accounts.snapshot_accounts(org["access"], org["store"], TEST_DAY))
    ids = org["ids"]
    assert set(rows) == {*ids.values(), org["management"]}
    assert rows[org["management"]]["is_management"] is True
    assert rows[org["management"]]["ou"] == "Root"
    assert [rows[ids[n]]["ou"] for n in ("payments", "core", "dev")] == ["Prod", "Core", "Dev"]


def test_tags_fill_owner_team_environment(org):
    rows = _by_id(accounts.snapshot_accounts(org["access"], org["store"], TEST_DAY))
    payments = rows[org["ids"]["payments"]]
    assert (payments["owner"], payments["team"], payments["environment"]) == (
        "alice@example.com", "<b>Payments</b>", "prod")
    assert json.loads(payments["tags_json"]) == TEST_TAGS
    assert rows[org["ids"]["dev"]]["environment"] == "dev"  # the short "env" key counts too


def test_latest_inventory_row_fills_what_tags_do_not_say(org):
    core = org["ids"]["core"]
    _inventory(org["store"], "2026-11-01", core, "old@example.com", "1.0.0", "2026-11-01T10:00:00")
    _inventory(org["store"], "2026-11-20", core, "new@example.com", "1.1.0", "2026-11-20T10:00:00")
    rows = _by_id(accounts.snapshot_accounts(org["access"], org["store"], TEST_DAY))
    assert rows[core]["owner"] == "new@example.com"
    assert rows[core]["baseline_version"] == "1.1.0"
    assert rows[core]["onboarded"] is True
    assert rows[org["ids"]["payments"]]["onboarded"] is False


def test_suspended_account_is_recorded_but_not_collectable(org):
    rows = accounts.snapshot_accounts(org["access"], org["store"], TEST_DAY)
    gone = org["ids"]["gone"]
    assert _by_id(rows)[gone]["status"] == "SUSPENDED"
    targets = [a["account_id"] for a in accounts.collectable(rows)]
    assert gone not in targets
    assert org["management"] in targets
    # Before the tags are read (the DAG's list_accounts): the same accounts, names and order.
    assert accounts.collectable_listed(accounts.list_org_accounts(org["access"])) == accounts.collectable(rows)


def test_accounts_table_is_written_once_per_day_and_rewritten_identically(org):
    accounts.snapshot_accounts(org["access"], org["store"], TEST_DAY)
    path = org["store"].partition_path("accounts", TEST_DAY) + "/part-all.parquet"
    first = open(path, "rb").read()
    accounts.snapshot_accounts(org["access"], org["store"], TEST_DAY)
    assert open(path, "rb").read() == first
    stored = org["store"].read("accounts", TEST_DAY, TEST_DAY, schema=tables.ACCOUNTS)
    assert len(stored) == 5
    assert list(stored["account_id"]) == sorted(stored["account_id"])


def test_ou_walk_costs_calls_per_ou_not_per_account(org):
    before = org["access"].total_calls()
    accounts.parent_ou_names(org["access"])
    # list_roots + (list_accounts_for_parent + list_organizational_units_for_parent) per node: root + 3 OUs.
    assert org["access"].total_calls() - before == 1 + 2 * 4


@pytest.mark.parametrize(
    ("count", "max_tasks", "sizes"),
    [
        pytest.param(12, 256, [1] * 12, id="one-account-per-task"),
        pytest.param(500, 200, [3] * 166 + [2], id="batched-at-scale"),
        pytest.param(0, 10, [], id="no-accounts"),
    ],
)
def test_batches_bound_the_number_of_mapped_tasks(count, max_tasks, sizes):
    targets = [{"account_id": f"{i:012d}", "name": f"a{i}"} for i in range(count)]
    out = accounts.batches(targets, max_tasks)
    assert [len(b) for b in out] == sizes
    assert [a for b in out for a in b] == targets


def test_tag_reads_throttled_beyond_botocore_retries_wait_and_try_again(monkeypatch):
    from botocore.exceptions import ClientError

    throttled = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}},
                            "ListTagsForResource")
    attempts: dict[str, int] = {}

    class Paginator:
        def paginate(self, ResourceId):  # noqa: N803 - boto3's parameter name
            attempts[ResourceId] = attempts.get(ResourceId, 0) + 1
            if attempts[ResourceId] < 3:
                raise throttled
            return [{"Tags": [{"Key": "Owner", "Value": f"{ResourceId}@example.com"}]}]

    class Client:
        def get_paginator(self, operation):
            return Paginator()

    class Access:
        def client(self, service):
            return Client()

    monkeypatch.setattr(accounts, "TAG_READ_BACKOFF", 0.0)
    tags = accounts.account_tags(Access(), ["111111111111", "222222222222"], workers=2)
    assert tags == {a: {"Owner": f"{a}@example.com"} for a in ("111111111111", "222222222222")}
    assert attempts == {"111111111111": 3, "222222222222": 3}


def test_tag_reads_give_up_after_their_attempts(monkeypatch):
    from botocore.exceptions import ClientError

    class Client:
        def get_paginator(self, operation):
            raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}},
                              "ListTagsForResource")

    class Access:
        def client(self, service):
            return Client()

    monkeypatch.setattr(accounts, "TAG_READ_BACKOFF", 0.0)
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        accounts.account_tags(Access(), ["111111111111"], workers=1)
