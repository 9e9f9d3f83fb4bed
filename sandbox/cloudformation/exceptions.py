"""CloudFormation StackSet errors, one class per AWS error code (moto's own cover StackSetNotFoundException)."""

from __future__ import annotations

from ..errors import AwsError


class OperationInProgressException(AwsError):
    code = "OperationInProgressException"

    def __init__(self, stackset_arn: str):
        super().__init__(f"Another Operation on StackSet {stackset_arn} is in progress")


class OperationIdAlreadyExistsException(AwsError):
    code = "OperationIdAlreadyExistsException"

    def __init__(self, operation_id: str):
        super().__init__(f"The operation ID {operation_id} already exists.")


class OperationNotFoundException(AwsError):
    code = "OperationNotFoundException"

    def __init__(self, operation_id: str):
        super().__init__(f"Operation {operation_id} not found")


class StackInstanceNotFoundException(AwsError):
    code = "StackInstanceNotFoundException"

    def __init__(self, stackset_name: str, account: str, region: str):
        super().__init__(f"Stack instance [{account}, {region}] not found in StackSet {stackset_name}")


class StackSetNotEmptyException(AwsError):
    code = "StackSetNotEmptyException"

    def __init__(self, stackset_name: str):
        super().__init__(f"StackSet {stackset_name} is not empty")


class InvalidOperationException(AwsError):
    code = "InvalidOperationException"


class ValidationError(AwsError):
    code = "ValidationError"
