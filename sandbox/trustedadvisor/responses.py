"""Trusted Advisor API (rest-json, botocore trustedadvisor/2022-09-15) responses: parsing and serialising only;
answers come from models.OrganizationView. moto has no backend for this service, so the server hands these requests
here itself (server.SandboxApp), after its middleware has counted, faulted and rate-limited them."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from ..core import world
from ..errors import REST_JSON, AwsError, render
from ..paging import InvalidNextTokenException, page
from .exceptions import ValidationException
from .models import DEFAULT_RESULTS, LANGUAGES, MAX_RESULTS, PILLARS, SOURCES, STATUSES, _enum

# The operations the product calls (their HTTP bindings in the service model), plus GetOrganizationRecommendation.
_ORG = re.compile(r"^/v1/organization-recommendations/(?P<id>.+?)(?P<sub>/accounts|/resources)?/?$")


def _limit(query: dict[str, str]) -> int:
    raw = query.get("maxResults")
    if raw is None:
        return DEFAULT_RESULTS
    try:
        value = int(raw)
    except ValueError:
        raise ValidationException(f"Value '{raw}' at 'maxResults' is not a valid integer") from None
    if not 1 <= value <= MAX_RESULTS:
        raise ValidationException(f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy "
                                  f"constraint: Member must have value {'less' if value > 1 else 'greater'} than or "
                                  f"equal to {MAX_RESULTS if value > 1 else 1}")
    return value


def _page(items: list[Any], query: dict[str, str], fingerprint: Any) -> tuple[list[Any], str | None]:
    token = query.get("nextToken")
    if token is not None and not 4 <= len(token) <= 10000:
        raise ValidationException("1 validation error detected: Value at 'nextToken' failed to satisfy constraint: "
                                  "Member must have length between 4 and 10000")
    try:
        return page(items, token, _limit(query), fingerprint)
    except InvalidNextTokenException:
        raise ValidationException("Invalid nextToken") from None


def _with_token(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    return {**body, "nextToken": token} if token else body


def list_checks(caller: str, query: dict[str, str]) -> dict[str, Any]:
    view = world().trusted_advisor_org
    view.authorize(caller, organization=False)
    _enum(query, "pillar", PILLARS)
    _enum(query, "source", SOURCES)
    _enum(query, "language", LANGUAGES)  # moto's catalogue is English only: every language answers with it
    checks = [c for c in view.checks() if query.get("pillar", c["pillars"][0]) in c["pillars"]
              and query.get("source", c["source"]) == c["source"]
              and ("awsService" not in query or query["awsService"] in c["awsServices"])]
    found, token = _page(checks, query, ["checks", {k: v for k, v in query.items() if k not in ("nextToken",
                                                                                                 "maxResults")}])
    return _with_token({"checkSummaries": found}, token)


def list_organization_recommendations(caller: str, query: dict[str, str]) -> dict[str, Any]:
    view = world().trusted_advisor_org
    view.authorize(caller, organization=True)
    filters = {k: v for k, v in query.items() if k not in ("nextToken", "maxResults")}
    recs = view.recommendations(world().clock.today(), filters)
    found, token = _page(recs, query, ["org-recommendations", filters])
    return _with_token({"organizationRecommendationSummaries": found}, token)


def _account_filter(query: dict[str, str]) -> str | None:
    account = query.get("affectedAccountId")
    if account is not None and not re.fullmatch(r"\d{12}", account):
        raise ValidationException(f"1 validation error detected: Value '{account}' at 'affectedAccountId' failed "
                                  "to satisfy constraint: Member must have length 12 and match pattern \\d+")
    return account


def organization_recommendation(caller: str, identifier: str, sub: str | None,
                                query: dict[str, str]) -> dict[str, Any] | str:
    view = world().trusted_advisor_org
    view.authorize(caller, organization=True)
    check_id = view.check_of(identifier)
    data = view.data(check_id, world().clock.today())
    if not sub:
        return {"organizationRecommendation": {**data["summary"], "description": view.ta.all_checks[check_id].get(
            "description", "")}}
    account = _account_filter(query)
    if sub == "/accounts":
        rows = [a for a in data["accounts"] if account is None or a["accountId"] == account]
        found, token = _page(rows, query, ["org-accounts", identifier, account])
        return _with_token({"accountRecommendationLifecycleSummaries": found}, token)
    _enum(query, "status", STATUSES)
    _enum(query, "exclusionStatus", ("excluded", "included"))
    wanted = {k: query.get(k) for k in ("status", "regionCode", "exclusionStatus")}
    rows = [r for r in data["resources"] if (account is None or r[0] == account)
            and wanted["status"] in (None, r[1]) and wanted["regionCode"] in (None, r[2])
            and wanted["exclusionStatus"] in (None, r[3])]
    found, token = _page(rows, query, ["org-resources", identifier, account, wanted])
    # Resources are kept serialised (an organization holds tens of thousands): a page is spliced, not re-encoded.
    tail = f', "nextToken": {json.dumps(token)}' if token else ""
    return '{"organizationRecommendationResourceSummaries": [' + ", ".join(r[4] for r in found) + "]" + tail + "}"


def app(environ: dict[str, Any], start_response: Callable, caller: str) -> list[bytes]:
    """The WSGI answer to one Trusted Advisor API request from ``caller`` (an account id)."""
    path = environ.get("PATH_INFO", "")
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
    try:
        if environ.get("REQUEST_METHOD") != "GET":
            raise AwsError(f"The sandbox serves only the Trusted Advisor API's read operations, not {path}",
                           code="ValidationException", status=400)
        body: dict[str, Any] | str
        if path.rstrip("/") == "/v1/checks":
            body = list_checks(caller, query)
        elif path.rstrip("/") == "/v1/organization-recommendations":
            body = list_organization_recommendations(caller, query)
        elif match := _ORG.match(path):
            body = organization_recommendation(caller, match.group("id"), match.group("sub"), query)
        else:
            raise AwsError(f"The sandbox does not serve {path}", code="ResourceNotFoundException", status=404)
    except AwsError as error:
        status, headers, data = render(error, REST_JSON)
        start_response(f"{status} Error", [*headers.items(), ("Content-Length", str(len(data)))])
        return [data]
    data = (body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)).encode("utf-8")
    request_id = str(uuid.uuid4())
    start_response("200 OK", [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id),
                              ("Content-Length", str(len(data)))])
    return [data]
