"""AWS Support errors, one class per AWS error code."""

from __future__ import annotations

from ..errors import AwsError


class SubscriptionRequiredException(AwsError):
    """The account has no Business, Enterprise On-Ramp or Enterprise support plan."""

    code = "SubscriptionRequiredException"

    def __init__(self, message: str = "AWS Premium Support Subscription is required to use this service."):
        super().__init__(message)


class InvalidParameterValueException(AwsError):
    code = "InvalidParameterValueException"
