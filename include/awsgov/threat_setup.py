"""Onboarding options for threat detection (docs/threats.md): GuardDuty and Macie in member accounts, the Security
Hub findings-import role, and the admin account as GuardDuty and Macie delegated administrator.

The first three are baseline template parameters (EnableGuardDuty, EnableMacie, EnableFindingsImport) passed as
``ParameterOverrides`` of the run's NEW stack instances only: an update of other accounts' instances keeps the values
they were created with. Regions without the service (botocore's endpoint data) are refused before any AWS call.
Registering the delegated administrator is a management-account call per region
(``guardduty:EnableOrganizationAdminAccount``, ``macie2:EnableOrganizationAdminAccount``), skipped where it is
registered already.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

# Form field -> baseline template parameter.
TEMPLATE_OPTIONS = {"enable_guardduty": "EnableGuardDuty", "enable_macie": "EnableMacie",
                    "findings_import_role": "EnableFindingsImport"}
# Form field -> the botocore service that must exist in every requested region.
REGIONAL_SERVICES = {"enable_guardduty": "guardduty", "enable_macie": "macie2", "delegated_admin": "guardduty"}
FLAGS = (*TEMPLATE_OPTIONS, "delegated_admin")


@lru_cache(maxsize=8)
def service_regions(service: str) -> frozenset[str]:
    """Regions where a service has an endpoint (botocore's endpoint data; no AWS call).

    :param service: botocore service name, e.g. macie2.
    """
    import boto3

    return frozenset(boto3.Session().get_available_regions(service))


def unsupported(request: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(field, service, regions) for each option asked for in regions where its service does not exist."""
    out = []
    for field, service in REGIONAL_SERVICES.items():
        if request.get(field):
            missing = [r for r in request["regions"] if r not in service_regions(service)]
            if missing:
                out.append((field, service, missing))
    return out


def overrides(request: Mapping[str, Any]) -> dict[str, str]:
    """ParameterOverrides values of the run's new stack instances (explicit "true"/"false")."""
    return {param: "true" if request.get(field) else "false" for field, param in TEMPLATE_OPTIONS.items()}


def _registered(client: Any, operation: str, result: str, key: str, admin_id: str) -> bool:
    from include.awsgov.aws import paginate

    return any(a.get(key) == admin_id for a in paginate(client, operation, result))


def register_delegated_admin(access: Any, regions: Iterable[str], admin_id: str) -> dict[str, dict[str, str]]:
    """Make ``admin_id`` the GuardDuty and Macie delegated administrator in each region (from the management
    account, whose credentials ``access`` holds). One failing region or service does not stop the others.

    :param access: the management account's access layer.
    :param regions: regions to register in.
    :param admin_id: the account to register.
    :returns: {service: {region: "registered" | "already" | "<error>"}}.
    """
    out: dict[str, dict[str, str]] = {"guardduty": {}, "macie2": {}}
    calls = {"guardduty": ("AdminAccounts", "AdminAccountId", {"AdminAccountId": admin_id}),
             "macie2": ("adminAccounts", "accountId", {"adminAccountId": admin_id})}
    for service, (result, key, kwargs) in calls.items():
        for region in regions:
            client = access.client(service, region)
            try:
                if _registered(client, "list_organization_admin_accounts", result, key, admin_id):
                    out[service][region] = "already"
                    continue
                client.enable_organization_admin_account(**kwargs)
                out[service][region] = "registered"
            except (ClientError, BotoCoreError) as exc:
                out[service][region] = str(exc).splitlines()[0][:300]
                log.warning("%s delegated administrator in %s not registered: %s", service, region, exc)
    return out
