"""What Organizations tells EventBridge about accounts, which moto does not.

On AWS, the end of an asynchronous ``CreateAccount`` is logged by CloudTrail as the service event
``CreateAccountResult`` (eventType ``AwsServiceEvent``, ``serviceEventDetails.createAccountStatus``: id, state,
accountId or failureReason) and a ``MoveAccount`` call as an API call; Organizations logs both in us-east-1 of the
management account only, so EventBridge delivers them on that account's default bus in us-east-1 as
"AWS Service Event via CloudTrail" and "AWS API Call via CloudTrail" (Organizations User Guide, "Logging AWS
Organizations API calls with AWS CloudTrail"; EventBridge User Guide, "Events from AWS services"). Here both go
through the sandbox's EventBridge delivery (events/models.py ``put_events``), so rules on that bus see them.

moto creates every account at once (state SUCCEEDED) and accepts an e-mail address already used by another account;
AWS fails such a request with state FAILED and failureReason EMAIL_ALREADY_EXISTS (Organizations API Reference,
CreateAccountStatus): so does the sandbox, creating nothing and emitting the FAILED result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from typing import Any

log = logging.getLogger(__name__)

EVENTS_REGION = "us-east-1"
SERVICE_EVENT = "AWS Service Event via CloudTrail"
API_CALL = "AWS API Call via CloudTrail"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _emit(management: str, detail_type: str, detail: dict[str, Any]) -> None:
    from ..events.models import put_events

    results = put_events(management, EVENTS_REGION, [
        {"Source": "aws.organizations", "DetailType": detail_type, "Detail": json.dumps(detail, default=str)}])
    log.info("organizations: %s %s -> default bus of %s (%s)", detail_type, detail.get("eventName"), management,
             results[0].get("EventId") or results[0].get("ErrorCode"))


def _record(management: str, name: str, event_type: str) -> dict[str, Any]:
    when = _now()
    return {"eventVersion": "1.08", "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "organizations.amazonaws.com", "eventName": name, "awsRegion": EVENTS_REGION,
            "eventID": secrets.token_hex(16), "readOnly": False, "eventType": event_type, "managementEvent": True,
            "recipientAccountId": management}


def create_account(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
    """CreateAccount: moto's account, or a FAILED status for a duplicate e-mail; the CreateAccountResult event."""
    management = backend.account_id
    email = str(params.get("Email") or "").lower()
    if backend.org is not None and any(str(a.email).lower() == email for a in backend.accounts):
        now = _now()
        status = {"Id": "car-" + secrets.token_hex(16), "AccountName": params.get("AccountName"),
                  "State": "FAILED", "RequestedTimestamp": now.timestamp(), "CompletedTimestamp": now.timestamp(),
                  "FailureReason": "EMAIL_ALREADY_EXISTS"}
    else:
        status = backend.create_account(**params)["CreateAccountStatus"]
    detail = {**_record(management, "CreateAccountResult", "AwsServiceEvent"),
              "userIdentity": {"accountId": management, "invokedBy": "AWS Internal"},
              "sourceIPAddress": "AWS Internal", "userAgent": "AWS Internal",
              "requestParameters": None, "responseElements": None,
              "serviceEventDetails": {"createAccountStatus": {
                  "id": status["Id"], "state": status["State"], "accountName": "****",
                  **({"accountId": status["AccountId"]} if status.get("AccountId") else {}),
                  **({"failureReason": status["FailureReason"]} if status.get("FailureReason") else {})}}}
    _emit(management, SERVICE_EVENT, detail)
    return status


def account_moved(backend: Any, params: dict[str, Any]) -> None:
    """MoveAccount succeeded: its API-call event."""
    management = backend.account_id
    detail = {**_record(management, "MoveAccount", "AwsApiCall"),
              "userIdentity": {"type": "AssumedRole", "accountId": management,
                               "arn": f"arn:aws:sts::{management}:assumed-role/sandbox/caller"},
              "sourceIPAddress": "192.0.2.10", "userAgent": "sandbox",
              "requestParameters": {"accountId": params.get("AccountId"),
                                    "sourceParentId": params.get("SourceParentId"),
                                    "destinationParentId": params.get("DestinationParentId")},
              "responseElements": None}
    _emit(management, API_CALL, detail)
