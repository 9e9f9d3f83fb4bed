"""The sandbox's Organizations emits what AWS emits for accounts: CreateAccountResult (SUCCEEDED, or FAILED for an
e-mail already in use) and MoveAccount on the management account's default bus in us-east-1; the central stack's
account rule takes them to the governance_events queues, where the DAG's ingest turns them into onboarding
requests."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from include.awsgov.events import ingest, new_accounts

CFG = ingest.events_config()


def _drain(sqs, url: str) -> list[dict]:
    out = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += batch
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch])
    return out


def test_account_creation_and_move_reach_the_events_queue(sb):
    from scripts.check_event_watcher import deploy_central

    outputs = deploy_central(sb)
    sqs, org = sb.client("sqs"), sb.client("organizations")
    queue = outputs["EventsQueueUrl"]
    _drain(sqs, queue)
    _drain(sqs, queue + "-wake")
    name = f"new-{uuid.uuid4().hex[:8]}"
    status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
    duplicate = org.create_account(AccountName=name + "-2", Email=f"{name}@example.com")["CreateAccountStatus"]
    assert status["State"] == "SUCCEEDED"
    assert (duplicate["State"], duplicate["FailureReason"]) == ("FAILED", "EMAIL_ALREADY_EXISTS")
    assert duplicate.get("AccountId") is None
    root = org.list_roots()["Roots"][0]["Id"]
    prod = next(ou["Id"] for ou in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
                if ou["Name"] == "Prod")
    org.move_account(AccountId=status["AccountId"], SourceParentId=root, DestinationParentId=prod)

    messages = _drain(sqs, queue)
    events = [json.loads(m["Body"]) for m in messages]
    assert [(e["source"], e["detail-type"], e["detail"]["eventName"], e["account"], e["region"]) for e in events] == [
        ("aws.organizations", "AWS Service Event via CloudTrail", "CreateAccountResult",
         sb.info["management_account_id"], "us-east-1")] * 2 + [
        ("aws.organizations", "AWS API Call via CloudTrail", "MoveAccount", sb.info["management_account_id"],
         "us-east-1")]
    states = [e["detail"]["serviceEventDetails"]["createAccountStatus"]["state"] for e in events[:2]]
    assert states == ["SUCCEEDED", "FAILED"]
    assert len(_drain(sqs, queue + "-wake")) == 3

    # What the DAG makes of them: one request, for the created account, with the defaults of Prod.
    rows, rejects = ingest.process(messages, admin_account_id=sb.info["management_account_id"], environments={},
                                   cfg=CFG, received_at=dt.datetime.now(dt.UTC))
    assert rejects == []
    onboard = {r["id"] for r in CFG["alerts"]["rules"] if r.get("onboard")}
    requests = new_accounts.onboarding_requests(org, new_accounts.subjects(rows, onboard), set(),
                                                new_accounts.ou_defaults())
    assert [(r["conf"]["account_ids"], r["ou_name"], r["conf"]["environment"]) for r in requests] == [
        ([status["AccountId"]], "Prod", "prod")]
