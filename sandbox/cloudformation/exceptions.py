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


class NotDelegatedAdministrator(ValidationError):
    """CallAs=DELEGATED_ADMIN from an account that is not registered as the StackSets delegated administrator (also
    from the management account itself). AWS answers ValidationError "Account used is not a delegated administrator"
    (HTTP 400; quoted in cdklabs/cdk-stacksets#265 and hashicorp/terraform-provider-aws#37069)."""

    def __init__(self) -> None:
        super().__init__("Account used is not a delegated administrator")


class NotOrganizationAdministrator(ValidationError):
    """A SERVICE_MANAGED StackSet call from a member account without CallAs=DELEGATED_ADMIN. AWS answers
    ValidationError "You must be the management account or delegated admin account of an organization before
    operating a SERVICE_MANAGED stack set" (HTTP 400; quoted in hashicorp/terraform-provider-aws#32536 and
    aws-cloudformation/cloudformation-coverage-roadmap#799), even when the account is a registered delegated
    administrator: CallAs defaults to SELF."""

    def __init__(self) -> None:
        super().__init__("You must be the management account or delegated admin account of an organization before "
                         "operating a SERVICE_MANAGED stack set")
