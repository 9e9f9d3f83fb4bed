"""Trusted Advisor API errors, one class per AWS error code (botocore trustedadvisor/2022-09-15 service-2.json:
each declares its httpStatusCode)."""

from __future__ import annotations

from ..errors import AwsError


class AccessDeniedException(AwsError):
    code = "AccessDeniedException"
    status = 403


class ValidationException(AwsError):
    code = "ValidationException"
    status = 400


class ResourceNotFoundException(AwsError):
    code = "ResourceNotFoundException"
    status = 404
