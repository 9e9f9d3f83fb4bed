"""SSM responses: moto's, plus inventory reads (parse and serialise only)."""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.ssm.responses import SimpleSystemManagerResponse

from ..core import ExtensionResponseMixin, world


class SsmResponse(ExtensionResponseMixin, SimpleSystemManagerResponse):
    @property
    def model(self):
        return world().inventory

    def get_inventory(self) -> ActionResult:
        return ActionResult(self.model.get_inventory(
            self.current_account, self.region, world().clock.today(), self._get_param("Filters"),
            self._get_param("ResultAttributes"), self._get_param("MaxResults"), self._get_param("NextToken")))

    def list_inventory_entries(self) -> ActionResult:
        return ActionResult(self.model.list_inventory_entries(
            self.current_account, self.region, world().clock.today(), self._get_param("InstanceId"),
            self._get_param("TypeName"), self._get_param("MaxResults"), self._get_param("NextToken")))
