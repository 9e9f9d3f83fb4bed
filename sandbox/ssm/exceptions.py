"""Systems Manager errors, one class per AWS error code."""

from __future__ import annotations

from ..errors import AwsError
from ..paging import InvalidNextTokenException

__all__ = ["InvalidInstanceId", "InvalidNextTokenException", "InvalidResultAttributeException",
           "InvalidTypeNameException", "ValidationException"]


class ValidationException(AwsError):
    code = "ValidationException"


class InvalidInstanceId(AwsError):
    code = "InvalidInstanceId"

    def __init__(self, instance_id: str):
        super().__init__(f"Instance Id {instance_id} is not a managed instance in this account and region.")


class InvalidTypeNameException(AwsError):
    code = "InvalidTypeNameException"

    def __init__(self, name: str):
        super().__init__(f"The inventory type name {name} is not valid.")


class InvalidResultAttributeException(AwsError):
    code = "InvalidResultAttributeException"
