"""Onboarding options for threat detection (docs/threats.md): GuardDuty and Macie in member accounts, the Security
Hub findings-import role, and the admin account as GuardDuty and Macie delegated administrator.

The first three are baseline template parameters (EnableGuardDuty, EnableMacie, EnableFindingsImport) passed as
``ParameterOverrides`` of the run's NEW stack instances only: an update of other accounts' instances keeps the values
they were created with. Regions without the service (botocore's endpoint data) are refused before any AWS call.
AWS allows one GuardDuty detector and one Macie session per account and region, so a stack instance creating a
second one fails: before the new instances are created, each account and region is read through the read role
(``guardduty:ListDetectors``, ``macie2:GetMacieSession``) and gets "false" where the service is on already (e.g.
auto-enabled by an organization's delegated administrator). An account whose read role does not exist yet (a new
account) cannot be read and gets the form's value.
Registering the delegated administrator is a management-account call per region
(``guardduty:EnableOrganizationAdminAccount``, ``macie2:EnableOrganizationAdminAccount``), skipped where it is
registered already; a failure in any region fails the task after every region was tried.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from include.awsgov.core import detectors
from include.awsgov.onboarding.stacksets import group_targets

log = logging.getLogger(__name__)

# Form field -> baseline template parameter.
TEMPLATE_OPTIONS = {"enable_guardduty": "EnableGuardDuty", "enable_macie": "EnableMacie",
                    "findings_import_role": "EnableFindingsImport"}
# Form field -> the botocore services that must exist in every requested region.
REGIONAL_SERVICES = {"enable_guardduty": ("guardduty",), "enable_macie": ("macie2",),
                     "delegated_admin": ("guardduty", "macie2")}
FLAGS = (*TEMPLATE_OPTIONS, "delegated_admin")
# Template parameter -> the service whose one-per-account-and-region resource it creates.
SINGLETONS = {"EnableGuardDuty": "guardduty", "EnableMacie": "macie2"}


class DelegatedAdminFailed(RuntimeError):
    """The delegated administrator could not be registered in some regions (the message names them)."""


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
    for field, services in REGIONAL_SERVICES.items():
        if request.get(field):
            for service in services:
                missing = [r for r in request["regions"] if r not in service_regions(service)]
                if missing:
                    out.append((field, service, missing))
    return out


def overrides(request: Mapping[str, Any], already_on: Iterable[str] = ()) -> dict[str, str]:
    """ParameterOverrides values of the run's new stack instances (explicit "true"/"false").

    :param already_on: template parameters (:data:`SINGLETONS`) whose service is on already in the instance's
        account and region: "false", so the instance does not try to create a second detector or session.
    """
    skip = set(already_on)
    return {param: "true" if request.get(field) and param not in skip else "false"
            for field, param in TEMPLATE_OPTIONS.items()}


def _service_on(access: Any, service: str, account_id: str, region: str) -> bool:
    client = access.client(service, region, account_id=account_id)
    if service == "guardduty":
        return detectors.detector_id(client) is not None  # any detector, enabled or suspended
    return detectors.session_status(client) is not None  # ENABLED or PAUSED: a session exists


def services_on(access: Any, request: Mapping[str, Any],
                pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[str] | None]:
    """For each (account, region): the :data:`SINGLETONS` parameters asked for whose service is on already there,
    read through the read role; None where the account could not be read (no read role yet: a new account).

    :param access: the admin account's access layer (assumes the read role).
    :param request: the validated request (which options are asked for).
    :param pairs: the new stack instances.
    """
    from include.awsgov.core.aws import classify_error

    field_of = {param: field for field, param in TEMPLATE_OPTIONS.items()}
    wanted = {param: svc for param, svc in SINGLETONS.items() if request.get(field_of[param])}
    out: dict[tuple[str, str], list[str] | None] = {}
    unreadable: set[str] = set()
    for account, region in pairs:
        if not wanted or account in unreadable:
            out[(account, region)] = None if account in unreadable else []
            continue
        try:
            out[(account, region)] = [p for p, svc in wanted.items() if _service_on(access, svc, account, region)]
        except (ClientError, BotoCoreError) as exc:
            out[(account, region)] = None
            if getattr(exc, "operation_name", "") == "AssumeRole":
                unreadable.add(account)  # one refused AssumeRole per account is enough
            log.warning("threat options: %s/%s not readable (%s: %s); the form's values apply there", account,
                        region, classify_error(exc), str(exc).splitlines()[0][:200])
    return out


def per_instance_groups(request: Mapping[str, Any], groups: Iterable[Mapping[str, Any]],
                        on: Mapping[tuple[str, str], list[str] | None]) -> list[dict[str, Any]]:
    """The plan's create groups split so that every instance of an operation gets the same ParameterOverrides
    (CreateStackInstances applies one set to all its accounts x regions); each group carries its ``overrides``.
    Groups holding the global region go first: the other regions use its IAM roles.

    :param groups: the plan's ``create`` groups ({"accounts", "regions"}).
    :param on: :func:`services_on`.
    """
    by_values: dict[tuple, list[tuple[str, str]]] = {}
    for group in groups:
        for account in group["accounts"]:
            for region in group["regions"]:
                values = overrides(request, on.get((account, region)) or ())
                by_values.setdefault(tuple(sorted(values.items())), []).append((account, region))
    out = [{**g, "overrides": dict(values)} for values, pairs in by_values.items()
           for g in group_targets(pairs, request["global_region"])]
    return sorted(out, key=lambda g: request["global_region"] not in g["regions"])


def _registered(client: Any, operation: str, result: str, key: str, admin_id: str) -> bool:
    from include.awsgov.core.aws import paginate

    return any(a.get(key) == admin_id for a in paginate(client, operation, result))


def register_delegated_admin(access: Any, regions: Iterable[str], admin_id: str) -> dict[str, dict[str, str]]:
    """Make ``admin_id`` the GuardDuty and Macie delegated administrator in each region (from the management
    account, whose credentials ``access`` holds). One failing region or service does not stop the others.

    :param access: the management account's access layer.
    :param regions: regions to register in.
    :param admin_id: the account to register.
    :returns: {service: {region: "registered" | "already"}}.
    :raises DelegatedAdminFailed: after every region was tried, naming each failed service, region and error.
    """
    out: dict[str, dict[str, str]] = {"guardduty": {}, "macie2": {}}
    failed: list[str] = []
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
                failed.append(f"{service} in {region}: {str(exc).splitlines()[0][:300]}")
                log.warning("%s delegated administrator in %s not registered: %s", service, region, exc)
    if failed:
        raise DelegatedAdminFailed(f"delegated administrator {admin_id} not registered: " + "; ".join(failed))
    return out
