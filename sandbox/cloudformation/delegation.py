"""StackSets delegated administrators in moto's Organizations.

AWS lets the management account register a member account as the StackSets delegated administrator
(CloudFormation User Guide, "Register a delegated administrator": ``aws organizations
register-delegated-administrator --service-principal=member.org.stacksets.cloudformation.amazonaws.com
--account-id=...``). moto 5.2.5's ``FakeDelegatedAdministrator.SUPPORTED_SERVICES`` lacks that principal and answers
InvalidInputException "You specified an unrecognized service principal.", so the sandbox adds it.
models.StackSetModel.authorize reads the registration.
"""

from __future__ import annotations

STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"


def install() -> None:
    """Let moto register (and list) StackSets delegated administrators (idempotent)."""
    from moto.organizations.models import FakeDelegatedAdministrator

    if STACKSETS_PRINCIPAL not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
        FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(STACKSETS_PRINCIPAL)
