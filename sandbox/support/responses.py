"""Support responses: moto's (DescribeTrustedAdvisorChecks, cases) plus Trusted Advisor results per account.
Parsing and serialising only; answers come from models.TrustedAdvisorModel."""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.support.responses import SupportResponse as MotoSupportResponse

from ..core import ExtensionResponseMixin, world


class SupportResponse(ExtensionResponseMixin, MotoSupportResponse):
    @property
    def model(self):
        return world().trusted_advisor

    def describe_trusted_advisor_check_result(self) -> ActionResult:
        result = self.model.result(self.current_account, self._get_param("checkId"), world().clock.today())
        return ActionResult({"result": result})

    def describe_trusted_advisor_check_summaries(self) -> ActionResult:
        today = world().clock.today()
        check_ids = self._get_param("checkIds") or []
        return ActionResult({"summaries": [self.model.summary(self.current_account, c, today) for c in check_ids]})

    def describe_trusted_advisor_check_refresh_statuses(self) -> ActionResult:
        check_ids = self._get_param("checkIds") or []
        return ActionResult({"statuses": self.model.refresh_statuses(self.current_account, check_ids)})

    def refresh_trusted_advisor_check(self) -> ActionResult:
        return ActionResult({"status": self.model.refresh(self.current_account, self._get_param("checkId"))})
