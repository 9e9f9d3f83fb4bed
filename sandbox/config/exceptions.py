"""AWS Config errors, one class per AWS error code."""

from __future__ import annotations

from ..errors import AwsError
from ..paging import InvalidLimitException, InvalidNextTokenException

__all__ = [
    "InvalidLimitException",
    "InvalidNextTokenException",
    "InvalidParameterValueException",
    "NoSuchConfigRuleException",
    "NoSuchConfigurationAggregatorException",
    "ValidationException",
]


class InvalidParameterValueException(AwsError):
    code = "InvalidParameterValueException"


class ValidationException(AwsError):
    code = "ValidationException"


class NoSuchConfigRuleException(AwsError):
    code = "NoSuchConfigRuleException"

    def __init__(self, rule_name: str):
        super().__init__(f"The ConfigRule '{rule_name}' provided in the request is invalid. Please check the "
                         "configRule name")


class NoSuchConfigurationAggregatorException(AwsError):
    code = "NoSuchConfigurationAggregatorException"

    def __init__(self, name: str):
        super().__init__(f"The configuration aggregator does not exist. Check the configuration aggregator name "
                         f"'{name}' and try again.")
