"""EventBridge errors the extension raises (moto's own stay moto's)."""

from __future__ import annotations

from ..errors import AwsError


class ValidationException(AwsError):
    code = "ValidationException"
    status = 400
