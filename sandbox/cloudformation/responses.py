"""CloudFormation responses: moto's, with StackSet instance operations answered by models.StackSetModel (timed
lifecycle, per-instance results). Parsing and serialising only; every StackSet action first has the model authorize
its caller and CallAs (StackSetModel.authorize: delegated administrators must say CallAs=DELEGATED_ADMIN)."""

from __future__ import annotations

from typing import Any

from moto.cloudformation.responses import CloudFormationResponse as MotoCloudFormationResponse
from moto.core.responses import ActionResult, EmptyResult

from ..core import ExtensionResponseMixin, world
from ..paging import page


def _filters(params: dict[str, Any]) -> dict[str, str]:
    return {f["Name"]: f["Values"] for f in params.get("Filters") or []}


class CloudFormationResponse(ExtensionResponseMixin, MotoCloudFormationResponse):
    @property
    def model(self):
        return world().stacksets

    def _p(self) -> dict[str, Any]:
        return self._get_params()

    def _stackset(self, name: str) -> Any:
        """The named StackSet of the caller, once the model has authorized the caller and its CallAs."""
        return self.model.authorized_stackset(self.current_account, self.region, name, self._get_param("CallAs"))

    def create_stack_set(self) -> ActionResult:
        self.model.authorize(self.current_account, self._get_param("CallAs"),
                             self._get_param("PermissionModel") or "SELF_MANAGED")
        return super().create_stack_set()

    def describe_stack_set(self) -> ActionResult:
        self._stackset(self._get_param("StackSetName"))
        return super().describe_stack_set()

    def list_stack_sets(self) -> ActionResult:
        self.model.authorize(self.current_account, self._get_param("CallAs"), None)
        return super().list_stack_sets()

    def create_stack(self) -> ActionResult:
        result = super().create_stack()
        self.model.after_stack_change(self.current_account, self.region, self._get_param("StackName"))
        return result

    def update_stack(self) -> ActionResult:
        result = super().update_stack()
        self.model.after_stack_change(self.current_account, self.region, self._get_param("StackName"))
        return result

    def delete_stack(self) -> ActionResult:
        self.model.after_stack_change(self.current_account, self.region, self._get_param("StackName"), deleted=True)
        return super().delete_stack()

    def create_stack_instances(self) -> ActionResult:
        p = self._p()
        self._stackset(p["StackSetName"])
        op = self.model.create_instances(
            self.current_account, self.region, p["StackSetName"], p.get("Accounts"), p.get("Regions") or [],
            p.get("ParameterOverrides"), p.get("DeploymentTargets"), p.get("OperationPreferences"),
            p.get("OperationId"))
        return ActionResult({"OperationId": op.id})

    def update_stack_instances(self) -> ActionResult:
        p = self._p()
        self._stackset(p["StackSetName"])
        op = self.model.update_instances(
            self.current_account, self.region, p["StackSetName"], p.get("Accounts"), p.get("Regions") or [],
            p.get("ParameterOverrides"), p.get("DeploymentTargets"), p.get("OperationPreferences"),
            p.get("OperationId"))
        return ActionResult({"OperationId": op.id})

    def delete_stack_instances(self) -> ActionResult:
        p = self._p()
        self._stackset(p["StackSetName"])
        op = self.model.delete_instances(
            self.current_account, self.region, p["StackSetName"], p.get("Accounts"), p.get("Regions") or [],
            p.get("DeploymentTargets"), p.get("OperationPreferences"),
            str(p.get("RetainStacks", "false")).lower() == "true", p.get("OperationId"))
        return ActionResult({"OperationId": op.id})

    def update_stack_set(self) -> ActionResult:
        p = self._p()
        self._stackset(p["StackSetName"])
        template = p.get("TemplateBody")
        if p.get("TemplateURL"):
            template = self._get_stack_from_s3_url(p["TemplateURL"])
        changes = {
            "template": template,
            "parameters": p.get("Parameters"),
            "description": p.get("Description"),
            "tags": {t["Key"]: t["Value"] for t in p.get("Tags") or []},
            "admin_role": p.get("AdministrationRoleARN"),
            "execution_role": p.get("ExecutionRoleName"),
        }
        op = self.model.update_stackset(
            self.current_account, self.region, p["StackSetName"], changes, p.get("Accounts"), p.get("Regions"),
            p.get("DeploymentTargets"), p.get("OperationPreferences"), p.get("OperationId"))
        return ActionResult({"OperationId": op.id})

    def delete_stack_set(self) -> ActionResult:
        self._stackset(self._get_param("StackSetName"))
        self.model.delete_stackset_allowed(self.current_account, self.region, self._get_param("StackSetName"))
        return super().delete_stack_set()

    def stop_stack_set_operation(self) -> ActionResult:
        self._stackset(self._get_param("StackSetName"))
        self.model.stop_operation(self.current_account, self.region, self._get_param("StackSetName"),
                                  self._get_param("OperationId"))
        return EmptyResult()

    def describe_stack_set_operation(self) -> ActionResult:
        stackset = self._stackset(self._get_param("StackSetName"))
        op = self.model.operation(stackset, self._get_param("OperationId"))
        return ActionResult({"StackSetOperation": op.describe()})

    def list_stack_set_operations(self) -> ActionResult:
        p = self._p()
        stackset = self._stackset(p["StackSetName"])
        rows = [op.summary() for op in self.model.list_operations(stackset)]
        items, token = page(rows, p.get("NextToken"), int(p.get("MaxResults") or 100), ["ops", stackset.id])
        return ActionResult({"Summaries": items, "NextToken": token})

    def list_stack_set_operation_results(self) -> ActionResult:
        p = self._p()
        stackset = self._stackset(p["StackSetName"])
        op = self.model.operation(stackset, p["OperationId"])
        wanted = _filters(p).get("OPERATION_RESULT_STATUS")
        rows = [dict(r) for r in op.results.values() if not wanted or r["Status"] == wanted]
        query = ["results", op.id, wanted]
        items, token = page(rows, p.get("NextToken"), int(p.get("MaxResults") or 100), query)
        return ActionResult({"Summaries": items, "NextToken": token})

    def list_stack_instances(self) -> ActionResult:
        p = self._p()
        stackset = self._stackset(p["StackSetName"])
        filters = _filters(p)
        rows = []
        for inst in self.model.list_instances(stackset):
            if p.get("StackInstanceAccount") and inst.account != p["StackInstanceAccount"]:
                continue
            if p.get("StackInstanceRegion") and inst.region != p["StackInstanceRegion"]:
                continue
            if filters.get("DETAILED_STATUS") and inst.detailed != filters["DETAILED_STATUS"]:
                continue
            if filters.get("LAST_OPERATION_ID") and inst.last_operation_id != filters["LAST_OPERATION_ID"]:
                continue
            rows.append(inst.summary())
        query = ["instances", stackset.id, p.get("StackInstanceAccount"), p.get("StackInstanceRegion"), filters]
        items, token = page(rows, p.get("NextToken"), int(p.get("MaxResults") or 100), query)
        return ActionResult({"Summaries": items, "NextToken": token})

    def describe_stack_instance(self) -> ActionResult:
        from .exceptions import StackInstanceNotFoundException

        p = self._p()
        stackset = self._stackset(p["StackSetName"])
        for inst in self.model.list_instances(stackset):
            if inst.account == p["StackInstanceAccount"] and inst.region == p["StackInstanceRegion"]:
                return ActionResult({"StackInstance": inst.describe()})
        raise StackInstanceNotFoundException(p["StackSetName"], p["StackInstanceAccount"], p["StackInstanceRegion"])
