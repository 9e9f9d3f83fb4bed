"""CloudWatch errors, one class per AWS error code."""

from __future__ import annotations

from ..errors import AwsError


class InvalidParameterValue(AwsError):
    code = "InvalidParameterValue"


class InvalidParameterCombination(AwsError):
    code = "InvalidParameterCombination"


class InvalidNextToken(AwsError):
    code = "InvalidNextToken"
