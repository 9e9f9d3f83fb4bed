"""GuardDuty errors, one class per AWS error code."""

from __future__ import annotations

from ..errors import AwsError


class BadRequestException(AwsError):
    code = "BadRequestException"
