"""Macie errors, one class per AWS error code."""

from __future__ import annotations

from ..errors import AwsError


class AccessDeniedException(AwsError):
    """What Macie answers in an account and region where it is not enabled."""

    code = "AccessDeniedException"
    status = 403

    def __init__(self, message: str = "Macie is not enabled."):
        super().__init__(message)


class ResourceNotFoundException(AwsError):
    code = "ResourceNotFoundException"
    status = 404


class ValidationException(AwsError):
    code = "ValidationException"


class ConflictException(AwsError):
    """EnableMacie where Macie already has a session (enabled or paused)."""

    code = "ConflictException"
    status = 409
