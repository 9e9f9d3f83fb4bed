"""Is GuardDuty or Macie on in one account and region: the presence checks that onboarding (never ask for a second
detector or session) and the collection (coverage: off is a gap, not an absence of findings) share.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from include.awsgov.core.aws import error_code, paginate

GUARDDUTY_SOURCE = "guardduty"  # also the botocore service name
MACIE_SOURCE = "macie"  # botocore service: macie2


def detector_id(client: Any) -> str | None:
    """The region's detector (``ListDetectors``; one per account and region), None when GuardDuty is off.

    :param client: a GuardDuty client of the account (or the administrator) and region.
    """
    ids = list(paginate(client, "list_detectors", "DetectorIds"))
    return ids[0] if ids else None


def macie_not_enabled(exc: ClientError) -> bool:
    """Whether a Macie error means "Macie is not enabled here" (not a refused read role)."""
    # The read role's own refusal (AssumeRole) is access_denied, not "Macie is off".
    return (exc.operation_name != "AssumeRole" and error_code(exc) == "AccessDeniedException"
            and "not enabled" in str(exc).lower())


def session_status(client: Any) -> str | None:
    """ENABLED or PAUSED (``GetMacieSession``); None where Macie is not enabled.

    :param client: a Macie client of the account (or the administrator) and region.
    """
    try:
        return client.get_macie_session().get("status")
    except ClientError as exc:
        if macie_not_enabled(exc):
            return None
        raise
