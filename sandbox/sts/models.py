"""The AssumeRole decision: does the target role exist, and does its trust policy let this caller in?

moto accepts any AssumeRole; AWS refuses a role that does not exist, a caller its trust policy does not name, an
``sts:ExternalId`` condition that the request does not satisfy, and accounts that are suspended.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any
from urllib.parse import unquote

from ..core import world
from .exceptions import AccessDenied

ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[\w+=,.@-]+)$")
ASSUMED_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, caller_account: str, caller_arn: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    caller_role_arn = None
    match = ASSUMED_ROLE_ARN.match(caller_arn)
    if match:
        caller_role_arn = f"arn:aws:iam::{match['account']}:role/{match['role']}"
    for entry in _as_list(principal.get("AWS")):
        if entry in ("*", caller_account, f"arn:aws:iam::{caller_account}:root", caller_arn, caller_role_arn):
            return True
    return False


def _conditions_hold(conditions: dict[str, Any], external_id: str | None) -> bool:
    """Evaluate the condition keys STS knows at AssumeRole; sts:ExternalId is the one that matters here."""
    for operator, clauses in (conditions or {}).items():
        for key, expected in clauses.items():
            if key.lower() != "sts:externalid":
                continue  # other keys (aws:PrincipalOrgID, ...) are not modelled: treated as satisfied
            values = [str(v) for v in _as_list(expected)]
            if external_id is None:
                if not operator.endswith("IfExists"):
                    return False
                continue
            op = operator.removesuffix("IfExists")
            if op == "StringEquals" and external_id not in values:
                return False
            if op == "StringNotEquals" and external_id in values:
                return False
            if op == "StringLike" and not any(fnmatch.fnmatchcase(external_id, v) for v in values):
                return False
    return True


def trust_allows(policy_document: str | dict, caller_account: str, caller_arn: str, external_id: str | None) -> bool:
    """Whether a role trust policy lets the caller assume the role.

    :param policy_document: the role's AssumeRolePolicyDocument (JSON text, possibly URL-encoded, or a dict).
    :param caller_account: account of the credentials making the call.
    :param caller_arn: ARN of the caller (user or assumed role).
    :param external_id: the request's ExternalId, None if not sent.
    """
    doc = policy_document
    if isinstance(doc, str):
        text = doc if doc.lstrip().startswith("{") else unquote(doc)
        doc = json.loads(text)
    allowed = False
    for statement in _as_list(doc.get("Statement")):
        actions = [a.lower() for a in _as_list(statement.get("Action"))]
        if not any(a in ("sts:assumerole", "sts:*", "*") for a in actions):
            continue
        if not _principal_matches(statement.get("Principal"), caller_account, caller_arn):
            continue
        if not _conditions_hold(statement.get("Condition", {}), external_id):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def caller_arn(account_id: str, access_key: str, region: str) -> str:
    """ARN of the caller as STS GetCallerIdentity would report it."""
    from moto.sts.models import sts_backends

    try:
        _, arn, _ = sts_backends[account_id]["aws"].get_caller_identity(access_key, region)
        return arn
    except Exception:
        return f"arn:aws:iam::{account_id}:user/sandbox"


def check_assume_role(
    caller_account: str, access_key: str, region: str, role_arn: str, external_id: str | None
) -> None:
    """Raise AccessDenied when AWS would refuse this AssumeRole; return quietly otherwise.

    :param caller_account: account of the calling credentials.
    :param access_key: the calling access key id.
    :param region: region of the STS endpoint.
    :param role_arn: RoleArn of the request.
    :param external_id: ExternalId of the request (None if absent).
    """
    from moto.iam.models import iam_backends

    w = world()
    who = caller_arn(caller_account, access_key, region)
    match = ROLE_ARN.match(role_arn or "")
    if not match:
        raise AccessDenied(who, role_arn)
    target, name = match["account"], match["name"]
    if w.faults.assume_denied(target):
        raise AccessDenied(who, role_arn)
    status = w.account_status(target)
    if status not in (None, "ACTIVE"):
        raise AccessDenied(who, role_arn)
    if target not in iam_backends:
        raise AccessDenied(who, role_arn)
    role = next((r for r in iam_backends[target]["global"].roles.values() if r.name == name), None)
    if role is None:
        raise AccessDenied(who, role_arn)
    if not trust_allows(role.assume_role_policy_document, caller_account, who, external_id):
        raise AccessDenied(who, role_arn)
