"""STS responses: moto's, with AssumeRole checked first (parse and serialize only; the decision is in models)."""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.sts.responses import TokenResponse as MotoTokenResponse

from ..core import ExtensionResponseMixin
from .models import check_assume_role


class TokenResponse(ExtensionResponseMixin, MotoTokenResponse):
    def assume_role(self) -> ActionResult:
        check_assume_role(
            caller_account=self.current_account,
            access_key=self.access_key,
            region=self.region,
            role_arn=self._get_param("RoleArn"),
            external_id=self._get_param("ExternalId"),
        )
        return super().assume_role()
