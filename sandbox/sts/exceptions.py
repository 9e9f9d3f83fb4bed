"""STS errors, one class per AWS error code."""

from __future__ import annotations

from ..errors import AwsError


class AccessDenied(AwsError):
    """AssumeRole refused: the role is missing, its trust policy does not allow the caller, or ExternalId differs."""

    code = "AccessDenied"
    status = 403

    def __init__(self, caller_arn: str, role_arn: str):
        super().__init__(f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
