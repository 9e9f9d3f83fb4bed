"""New accounts onboard themselves: an Organizations account creation, or an account moved into a governed OU,
becomes one ``account_onboarding`` request with the defaults of its OU.

Two events, both from the management account in us-east-1 (Organizations logs there only: Organizations User Guide,
"Logging AWS Organizations API calls with AWS CloudTrail"):

- ``CreateAccountResult``, detail-type "AWS Service Event via CloudTrail" (eventType ``AwsServiceEvent``), the end
  of an asynchronous ``CreateAccount``: ``detail.serviceEventDetails.createAccountStatus`` holds ``id``
  (``car-...``), ``state`` (``SUCCEEDED`` or ``FAILED``), ``accountId`` (when it succeeded) and ``failureReason``
  (Organizations API Reference, CreateAccountStatus). A new account starts in the root: it is onboarded only if its
  parent (``ListParents``, read when the request is made) is a governed OU; otherwise its move into one will be.
- ``MoveAccount``, an API call (detail-type "AWS API Call via CloudTrail"): ``requestParameters`` ``accountId``,
  ``sourceParentId``, ``destinationParentId``.

:func:`normalise_detail` is what ingest.normalise makes of these events (type ``organizations:<eventName>``, the
subject account, state and OU as attributes); :func:`onboarding_requests` turns the run's events into requests:
failed creations are ignored, an account already onboarded (inventory) or already requested (one request per
account, whatever the events: the run id names the account, so a second trigger is skipped by Airflow) is left
alone, and an OU without an entry in ``onboarding.yaml`` ``ou_defaults`` is not governed. Airflow-free.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

CREATE_RESULT = "organizations:CreateAccountResult"
MOVE_ACCOUNT = "organizations:MoveAccount"
SUCCEEDED = "SUCCEEDED"
ONBOARDING_CONFIG = Path(__file__).resolve().parents[2] / "config" / "onboarding.yaml"
# account_onboarding run ids of these requests: one per account, so a duplicate is skipped when triggered.
RUN_ID_PREFIX = "onboard_new_account__"
_ACCOUNT = re.compile(r"\d{12}")
_OU = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def normalise_detail(detail_type: str, d: Mapping[str, Any]) -> dict[str, Any]:
    """ingest.normalise's parts of an ``aws.organizations`` event (any event name: others keep only the type).

    :param detail_type: the event's detail-type.
    :param d: its detail.
    """
    name = str(d.get("eventName") or detail_type)
    status = _get(d, "serviceEventDetails", "createAccountStatus") or {}
    params = d.get("requestParameters") if isinstance(d.get("requestParameters"), Mapping) else {}
    subject = status.get("accountId") or params.get("accountId") or ""
    attributes = {"subject_account_id": str(subject), "create_state": str(status.get("state") or ""),
                  "create_request_id": str(status.get("id") or ""),
                  "failure_reason": str(status.get("failureReason") or ""),
                  "destination_ou": str(params.get("destinationParentId") or ""),
                  "error_code": str(d.get("errorCode") or "")}
    return {"type": f"organizations:{name}", "resource": str(subject) or None,
            "actor": _get(d, "userIdentity", "arn") or _get(d, "userIdentity", "invokedBy") or "",
            "actor_type": _get(d, "userIdentity", "type") or "", "severity": "low", "attributes": attributes}


def ou_defaults(path: Path = ONBOARDING_CONFIG) -> dict[str, dict[str, Any]]:
    """``ou_defaults`` of onboarding.yaml: OU id or name -> the onboarding form's values for its accounts."""
    return dict((yaml.safe_load(path.read_text()) or {}).get("ou_defaults") or {})


def governing_defaults(ou_id: str, ou_name: str, defaults: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The defaults of an OU (by id, else by name), or None when the OU is not governed."""
    found = defaults.get(ou_id) if ou_id in defaults else defaults.get(ou_name)
    return dict(found) if found is not None else None


def subjects(rows: Iterable[Mapping[str, Any]], onboard_rules: set[str]) -> list[dict[str, Any]]:
    """The accounts the run's events ask to onboard, first event per account: creations that succeeded and moves
    into an OU. Failed creations and calls that failed (errorCode) are dropped with a log line.

    :param rows: ``events`` rows (``alert_rules``, ``type``, ``attributes_json``, ``event_id``, ``time``).
    :param onboard_rules: ids of the events.yaml rules marked ``onboard: true``.
    """
    out: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (str(r["time"]), str(r["event_id"]))):
        if not onboard_rules & set(filter(None, str(row.get("alert_rules") or "").split(","))):
            continue
        attrs = json.loads(row.get("attributes_json") or "{}")
        account = str(attrs.get("subject_account_id") or "")
        if row["type"] == CREATE_RESULT and attrs.get("create_state") != SUCCEEDED:
            log.info("new accounts: creation %s ended %s (%s): ignored", attrs.get("create_request_id"),
                     attrs.get("create_state") or "without a state", attrs.get("failure_reason") or "-")
            continue
        if attrs.get("error_code"):
            log.info("new accounts: %s for %s failed (%s): ignored", row["type"], account, attrs["error_code"])
            continue
        if not _ACCOUNT.fullmatch(account):
            log.warning("new accounts: event %s names no account id: ignored", row["event_id"])
            continue
        if account in out:
            continue  # the same account twice in one run (creation, then move)
        out[account] = {"account_id": account, "event_id": str(row["event_id"]), "type": row["type"],
                        "ou_id": str(attrs.get("destination_ou") or ""),
                        "create_request_id": str(attrs.get("create_request_id") or "")}
    return list(out.values())


def parent_ou(org: Any, account_id: str) -> tuple[str, str]:
    """The account's parent now (Organizations ``ListParents``, ``DescribeOrganizationalUnit``): (id, name); the
    name is "" for the root."""
    parents = org.list_parents(ChildId=account_id)["Parents"]
    if not parents or parents[0]["Type"] != "ORGANIZATIONAL_UNIT":
        return (parents[0]["Id"] if parents else ""), ""
    ou_id = parents[0]["Id"]
    return ou_id, org.describe_organizational_unit(OrganizationalUnitId=ou_id)["OrganizationalUnit"]["Name"]


def onboarding_requests(org: Any, candidates: Iterable[Mapping[str, Any]], onboarded: set[str],
                        defaults: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One account_onboarding trigger (run id and conf) per candidate account in a governed OU, not yet onboarded.

    The OU is the account's parent at this moment (an account created and then moved is onboarded with the
    defaults of where it is now). The conf is the OU's defaults plus the account id; the onboarding DAG's Params
    validate it like a form submission.

    :param org: the management account's Organizations client.
    :param candidates: from :func:`subjects`.
    :param onboarded: account ids in the inventory.
    :param defaults: from :func:`ou_defaults`.
    """
    out = []
    for candidate in candidates:
        account = candidate["account_id"]
        if account in onboarded:
            log.info("new accounts: %s is already onboarded: ignored", account)
            continue
        ou_id, ou_name = parent_ou(org, account)
        values = governing_defaults(ou_id, ou_name, defaults)
        if values is None:
            log.info("new accounts: %s is in %s (%s), which is not a governed OU (onboarding.yaml ou_defaults): "
                     "not onboarded until it moves into one", account, ou_id or "no parent", ou_name or "root")
            continue
        conf = {**values, "account_ids": [account]}
        if conf.get("permission_model") == "SERVICE_MANAGED" and _OU.fullmatch(ou_id):
            conf["ou_ids"] = [ou_id]
        out.append({"trigger_run_id": f"{RUN_ID_PREFIX}{account}", "conf": conf,
                    "account_id": account, "ou_id": ou_id, "ou_name": ou_name, "event_id": candidate["event_id"]})
        log.info("new accounts: %s (%s, %s) -> account_onboarding with the defaults of %s", account,
                 candidate["type"], candidate["event_id"], ou_name or ou_id)
    return out
