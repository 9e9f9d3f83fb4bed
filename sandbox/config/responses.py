"""Config responses: moto's, plus rule compliance and the aggregator (parse and serialise only)."""

from __future__ import annotations

from moto.config.responses import ConfigResponse as MotoConfigResponse
from moto.core.responses import ActionResult

from ..core import ExtensionResponseMixin, world
from ..errors import AwsError


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

    def describe_configuration_aggregator_sources_status(self) -> ActionResult:
        return ActionResult(self.model.aggregator_sources_status(
            self.current_account, self.region, world().clock.today(), self._get_param("ConfigurationAggregatorName"),
            self._get_param("UpdateStatus"), self._get_param("Limit"), self._get_param("NextToken")))

    # --- inventory (advanced query) and resource history: sandbox/config/advanced_query.py, cloudtrail/models.py
    def select_aggregate_resource_config(self) -> ActionResult:
        from .advanced_query import select_aggregate

        return ActionResult(select_aggregate(
            world(), self.current_account, self.region, world().clock.today(),
            self._get_param("ConfigurationAggregatorName"), self._get_param("Expression"),
            self._get_param("MaxResults") or self._get_param("Limit"), self._get_param("NextToken")))

    def get_resource_config_history(self):  # type: ignore[override]
        try:
            return ActionResult(world().changes.config_history(
                self.current_account, self.region, world().clock.today(), self._get_param("resourceType"),
                self._get_param("resourceId"), self._get_param("laterTime"), self._get_param("earlierTime"),
                self._get_param("chronologicalOrder"), self._get_param("limit"), self._get_param("nextToken")))
        except AwsError as error:
            if error.code != "ResourceNotDiscoveredException":
                raise
            return super().get_resource_config_history()  # resources moto itself records
