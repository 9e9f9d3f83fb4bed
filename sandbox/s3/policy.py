"""Bucket policies with their conditions, as S3 evaluates them for a request that came over HTTPS.

moto enforces a bucket policy's ``Principal: "*"`` statements but ignores their conditions (moto.s3.models
``put_bucket_policy``: "Conditions are not taken into account"). So the ubiquitous statement that denies requests not
sent over TLS (``"Bool": {"aws:SecureTransport": "false"}``, AWS's own recommendation, "Security best practices for
Amazon S3") denied every request, including the bucket owner's reads over AWS's HTTPS endpoints. Here a statement
applies only when its conditions hold for the request's context. The sandbox listens on plain HTTP on loopback, but it
stands for AWS's HTTPS endpoints, so ``aws:SecureTransport`` is ``true``. A condition on a key the context does not
have does not hold (IAM: a missing key makes a condition false, except for ``...IfExists`` operators and ``Null``).
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

# The request context the sandbox knows for every S3 request.
CONTEXT = {"aws:securetransport": "true"}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def condition_holds(condition: dict[str, Any] | None, context: dict[str, str] = CONTEXT) -> bool:
    """Whether every operator and key of a statement's Condition holds for ``context`` (keys compared lower-cased).

    :param condition: the statement's ``Condition`` block.
    :param context: condition keys (lower-case) -> their value in the request.
    """
    for operator, checks in (condition or {}).items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        for key, expected in (checks or {}).items():
            actual = context.get(key.lower())
            values = [str(v) for v in _as_list(expected)]
            if base == "Null":
                ok = (actual is None) == (values[0].lower() == "true")
            elif actual is None:
                ok = if_exists
            elif base == "Bool":
                ok = actual.lower() in {v.lower() for v in values}
            elif base in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif base == "StringNotEquals":
                ok = actual not in values
            elif base in ("StringLike", "ArnLike"):
                ok = any(fnmatch.fnmatchcase(actual, v) for v in values)
            else:
                ok = False  # an operator the sandbox does not model never holds
            if not ok:
                return False
    return True


def install() -> None:
    """Evaluate bucket-policy conditions in moto's S3 (idempotent)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    if getattr(FakeBucket.get_permission, "sandbox_conditions", False):
        return

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy)
        statements = [s for s in _as_list(document.get("Statement")) if condition_holds(s.get("Condition"))]
        if not statements:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": statements})).is_action_permitted(action, resource)

    get_permission.sandbox_conditions = True  # type: ignore[attr-defined]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]
