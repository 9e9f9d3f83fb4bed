"""Config responses: moto's, plus rule compliance and the aggregator (parse and serialise only)."""

from __future__ import annotations

from moto.config.responses import ConfigResponse as MotoConfigResponse
from moto.core.responses import ActionResult

from ..core import ExtensionResponseMixin, world


class ConfigResponse(ExtensionResponseMixin, MotoConfigResponse):
    @property
    def model(self):
        return world().compliance

    def describe_compliance_by_config_rule(self) -> ActionResult:
        return ActionResult(self.model.compliance_by_config_rule(
            self.current_account, self.region, world().clock.today(), self._get_param("ConfigRuleNames"),
            self._get_param("ComplianceTypes"), self._get_param("NextToken")))

    def get_compliance_details_by_config_rule(self) -> ActionResult:
        return ActionResult(self.model.compliance_details_by_config_rule(
            self.current_account, self.region, world().clock.today(), self._get_param("ConfigRuleName"),
            self._get_param("ComplianceTypes"), self._get_param("Limit"), self._get_param("NextToken")))

    def describe_compliance_by_resource(self) -> ActionResult:
        return ActionResult(self.model.compliance_by_resource(
            self.current_account, self.region, world().clock.today(), self._get_param("ResourceType"),
            self._get_param("ResourceId"), self._get_param("ComplianceTypes"), self._get_param("Limit"),
            self._get_param("NextToken")))

    def describe_aggregate_compliance_by_config_rules(self) -> ActionResult:
        return ActionResult(self.model.aggregate_compliance_by_config_rules(
            self.current_account, self.region, world().clock.today(), self._get_param("ConfigurationAggregatorName"),
            self._get_param("Filters"), self._get_param("Limit"), self._get_param("NextToken")))

    def get_aggregate_compliance_details_by_config_rule(self) -> ActionResult:
        return ActionResult(self.model.aggregate_compliance_details(
            self.current_account, self.region, world().clock.today(), self._get_param("ConfigurationAggregatorName"),
            self._get_param("ConfigRuleName"), self._get_param("AccountId"), self._get_param("AwsRegion"),
            self._get_param("ComplianceType"), self._get_param("Limit"), self._get_param("NextToken")))
