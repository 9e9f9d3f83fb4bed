"""new_accounts.py: Organizations account creations and moves -> account_onboarding requests with the defaults of the
account's OU; failed creations, duplicates, onboarded accounts and ungoverned OUs are left alone. Events go through
the real ingest path (parse, normalise, route by events.yaml) on an in-process moto organization."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from moto import mock_aws

from include.awsgov.core.aws import AwsAccess
from include.awsgov.events import ingest, new_accounts
from include.awsgov.onboarding import form

CFG = ingest.events_config()
ONBOARD_RULES = {r["id"] for r in CFG["alerts"]["rules"] if r.get("onboard")}
T0 = dt.datetime(2026, 11, 27, 10, 15, tzinfo=dt.UTC)
DEFAULTS = new_accounts.ou_defaults()


def _message(management: str, event_id: str, detail_type: str, detail: dict) -> dict:
    return {"MessageId": f"m-{event_id}", "Body": json.dumps({
        "version": "0", "id": event_id, "detail-type": detail_type, "source": "aws.organizations",
        "account": management, "time": T0.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1", "resources": [],
        "detail": detail})}


def created(management: str, event_id: str, account_id: str | None, state: str = "SUCCEEDED") -> dict:
    """CreateAccountResult as Organizations logs it (Organizations User Guide, "Logging AWS Organizations API calls
    with AWS CloudTrail"; createAccountStatus: Organizations API Reference, CreateAccountStatus)."""
    status = {"id": f"car-{event_id}0000000", "state": state, "accountName": "****"}
    status.update({"accountId": account_id} if account_id else {"failureReason": "EMAIL_ALREADY_EXISTS"})
    return _message(management, event_id, "AWS Service Event via CloudTrail", {
        "eventVersion": "1.08", "userIdentity": {"accountId": management, "invokedBy": "AWS Internal"},
        "eventSource": "organizations.amazonaws.com", "eventName": "CreateAccountResult", "awsRegion": "us-east-1",
        "eventType": "AwsServiceEvent", "serviceEventDetails": {"createAccountStatus": status}})


def moved(management: str, event_id: str, account_id: str, source: str, destination: str) -> dict:
    return _message(management, event_id, ingest.API_CALL, {
        "eventVersion": "1.08", "eventSource": "organizations.amazonaws.com", "eventName": "MoveAccount",
        "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{management}:assumed-role/admin/alice"},
        "awsRegion": "us-east-1", "eventType": "AwsApiCall",
        "requestParameters": {"accountId": account_id, "sourceParentId": source, "destinationParentId": destination}})


@pytest.fixture
def org(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = AwsAccess.from_args(region="us-east-1").client("organizations")
        management = client.create_organization(FeatureSet="ALL")["Organization"]["MasterAccountId"]
        root = client.list_roots()["Roots"][0]["Id"]
        ous = {name: client.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"]
               for name in ("Prod", "Dev", "Sandbox")}

        def new_account(name: str, ou: str | None = None) -> str:
            account = client.create_account(AccountName=name, Email=f"{name}@example.com")[
                "CreateAccountStatus"]["AccountId"]
            if ou:
                client.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ous[ou])
            return account

        yield {"client": client, "management": management, "root": root, "ous": ous, "new": new_account}


def _requests(org, messages, onboarded=frozenset()):
    rows, rejects = ingest.process(messages, admin_account_id=org["management"], environments={}, cfg=CFG,
                                   received_at=T0)
    assert rejects == []
    return new_accounts.onboarding_requests(org["client"], new_accounts.subjects(rows, ONBOARD_RULES),
                                            set(onboarded), DEFAULTS)


def test_created_account_in_a_governed_ou_gets_one_request_with_the_ou_defaults(org):
    account = org["new"]("payments-prod", "Prod")
    [request] = _requests(org, [created(org["management"], "e1", account)])
    assert request["trigger_run_id"] == f"onboard_new_account__{account}"
    assert request["conf"] == {**DEFAULTS["Prod"], "account_ids": [account]}
    assert (request["ou_id"], request["ou_name"]) == (org["ous"]["Prod"], "Prod")
    assert form.explain(request["conf"]) == []  # the onboarding DAG's Params accept it as a form submission


def test_account_moved_into_a_governed_ou_is_onboarded_with_its_defaults(org):
    account = org["new"]("search-dev")  # created in the root: not governed yet
    assert _requests(org, [created(org["management"], "e1", account)]) == []
    org["client"].move_account(AccountId=account, SourceParentId=org["root"], DestinationParentId=org["ous"]["Dev"])
    [request] = _requests(org, [moved(org["management"], "e2", account, org["root"], org["ous"]["Dev"])])
    assert request["conf"]["environment"] == "dev" and request["conf"]["account_ids"] == [account]


def test_failed_creation_is_ignored(org):
    messages = [created(org["management"], "e1", None, state="FAILED")]
    rows, _ = ingest.process(messages, admin_account_id=org["management"], environments={}, cfg=CFG, received_at=T0)
    assert rows[0]["route"] == "report"  # no onboard rule matches a FAILED creation
    assert new_accounts.subjects(rows, ONBOARD_RULES) == []


def test_duplicates_give_one_request_and_onboarded_accounts_none(org):
    account, other = org["new"]("a-prod", "Prod"), org["new"]("b-prod", "Prod")
    messages = [created(org["management"], "e1", account), created(org["management"], "e1", account),
                moved(org["management"], "e2", account, org["root"], org["ous"]["Prod"]),
                created(org["management"], "e3", other)]
    requests = _requests(org, messages, onboarded={other})
    assert [r["conf"]["account_ids"] for r in requests] == [[account]]
    # A later run seeing the same account again asks for the same run id, which Airflow skips as existing.
    again = _requests(org, [moved(org["management"], "e4", account, org["ous"]["Dev"], org["ous"]["Prod"])])
    assert [r["trigger_run_id"] for r in again] == [requests[0]["trigger_run_id"]]


def test_ungoverned_ou_and_failed_move_are_ignored(org):
    account = org["new"]("lab", "Sandbox")  # Sandbox has no ou_defaults
    assert _requests(org, [created(org["management"], "e1", account)]) == []
    failed = moved(org["management"], "e2", account, org["root"], org["ous"]["Prod"])
    body = json.loads(failed["Body"])
    body["detail"]["errorCode"] = "AccessDenied"
    assert _requests(org, [{**failed, "Body": json.dumps(body)}]) == []
