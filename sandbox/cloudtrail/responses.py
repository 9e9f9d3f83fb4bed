"""CloudTrail responses: moto's, plus LookupEvents (parse and serialise only)."""

from __future__ import annotations

from moto.cloudtrail.responses import CloudTrailResponse as MotoCloudTrailResponse
from moto.core.responses import ActionResult

from ..core import ExtensionResponseMixin, world


class CloudTrailResponse(ExtensionResponseMixin, MotoCloudTrailResponse):
    def lookup_events(self) -> ActionResult:
        return ActionResult(world().changes.lookup_events(
            self.current_account, self.region, world().clock.today(), self._get_param("LookupAttributes"),
            self._get_param("StartTime"), self._get_param("EndTime"), self._get_param("MaxResults"),
            self._get_param("NextToken")))
