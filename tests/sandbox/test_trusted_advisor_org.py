"""The sandbox's Trusted Advisor API (trustedadvisor 2022-09-15) organization view: the same results the Support API
answers each account, paging and its limits, the errors AWS documents, and the request-rate quota."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

MAX = 200


def _all(client, operation, key, **params):
    return [item for page in client.get_paginator(operation).paginate(**params) for item in page[key]]


@pytest.fixture
def ta(sb):
    # botocore's standard retries: paging at small page sizes runs into the quota (10/s burst 20, assumed) as on AWS
    return sb.client("trustedadvisor")


def _recs(ta):
    return {r["checkArn"].rsplit("/", 1)[-1]: r for r in _all(ta, "list_organization_recommendations",
                                                              "organizationRecommendationSummaries")}


def test_list_checks_is_the_support_catalogue(sb, ta):
    support = {c["id"]: c for c in sb.client("support").describe_trusted_advisor_checks(language="en")["checks"]}
    checks = _all(ta, "list_checks", "checkSummaries", source="ta_check", language="en")
    assert {c["id"] for c in checks} == set(support)
    for c in checks:
        assert c["arn"] == f"arn:aws:trustedadvisor:::check/{c['id']}"
        assert c["pillars"] == [support[c["id"]]["category"]]
        assert [c["metadata"][str(i)] for i in range(len(c["metadata"]))] == support[c["id"]]["metadata"]
    assert _all(ta, "list_checks", "checkSummaries", source="security_hub") == []
    security = _all(ta, "list_checks", "checkSummaries", pillar="security")
    assert security and {c["pillars"][0] for c in security} == {"security"}


def test_each_accounts_view_equals_its_support_api_results(sb, ta, members):
    truth = sb.truth(sections=["trusted_advisor"])["trusted_advisor"]
    recs = _recs(ta)
    # Only prioritized recommendations (AWS API Reference): a subset of the checks, the truth says which.
    prioritized = truth["organization_view"]["prioritized"]
    assert set(recs) == set(prioritized) == set(truth["organization_view"]["recommendations"])
    assert prioritized and set(prioritized) < set(truth["checks"])
    assert {truth["checks"][cid]["category"] for cid in prioritized} <= {"security", "fault_tolerance"}
    assert {r["type"] for r in recs.values()} == {"priority"}
    accounts = [sb.info["management_account_id"], *members["onboarded"]]
    for check_id, rec in recs.items():
        listed = {a["accountId"]: a for a in _all(ta, "list_organization_recommendation_accounts",
                                                  "accountRecommendationLifecycleSummaries",
                                                  organizationRecommendationIdentifier=rec["arn"])}
        resources = _all(ta, "list_organization_recommendation_resources",
                         "organizationRecommendationResourceSummaries", organizationRecommendationIdentifier=rec["arn"])
        for account in accounts:
            result = truth["results"][account][check_id]
            if result["status"] == "not_available":
                assert account not in listed
                continue
            assert listed[account]["lastUpdatedAt"].strftime("%Y-%m-%dT%H:%M:%SZ") == result["timestamp"]
            mine = [r for r in resources if r["accountId"] == account]
            assert len(mine) == result["resourcesSummary"]["resourcesProcessed"]
            flagged = [r for r in mine if r["status"] != "ok"]
            if truth["checks"][check_id]["metadata"]:
                assert [(r["id"], r["status"], r["regionCode"],
                         [r["metadata"][str(i)] for i in range(len(r["metadata"]))]) for r in flagged] == [
                    (f["resourceId"], f["status"], f["region"], f["metadata"]) for f in result["flaggedResources"]]
            else:  # the account itself, carrying the check's status
                assert [r["status"] for r in mine] == [result["status"]] and not mine[0]["awsResourceId"]
        total = rec["resourcesAggregates"]
        assert total["okCount"] + total["warningCount"] + total["errorCount"] == len(resources)


def test_paging_limits_and_tokens(sb, ta):
    rec = next(iter(_recs(ta).values()))
    sb.refill_quotas()  # about 16 calls of one operation: within the burst (20) of its bucket, from rest
    first = ta.list_organization_recommendation_resources(organizationRecommendationIdentifier=rec["arn"],
                                                          maxResults=2)
    assert len(first["organizationRecommendationResourceSummaries"]) == 2 and first["nextToken"]
    everything = _all(ta, "list_organization_recommendation_resources", "organizationRecommendationResourceSummaries",
                      organizationRecommendationIdentifier=rec["arn"], PaginationConfig={"PageSize": 10})
    assert len({r["id"] for r in everything}) == len(everything)
    assert len(everything) == len(_all(ta, "list_organization_recommendation_resources",
                                       "organizationRecommendationResourceSummaries",
                                       organizationRecommendationIdentifier=rec["arn"],
                                       PaginationConfig={"PageSize": MAX}))
    one = everything[0]["accountId"]
    only = _all(ta, "list_organization_recommendation_resources", "organizationRecommendationResourceSummaries",
                organizationRecommendationIdentifier=rec["arn"], affectedAccountId=one)
    assert {r["accountId"] for r in only} == {one}
    for bad in (MAX + 1, 1000):  # botocore itself refuses below the minimum, 1
        with pytest.raises(ClientError) as exc:
            ta.list_organization_recommendations(maxResults=bad)
        assert exc.value.response["Error"]["Code"] == "ValidationException"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    other = list(_recs(ta).values())[1]
    with pytest.raises(ClientError) as exc:  # a token continues only the listing it was issued for
        ta.list_organization_recommendation_resources(organizationRecommendationIdentifier=other["arn"],
                                                      nextToken=first["nextToken"])
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_filters(ta):
    recs = _all(ta, "list_organization_recommendations", "organizationRecommendationSummaries")
    some = recs[0]
    assert [r["id"] for r in _all(ta, "list_organization_recommendations", "organizationRecommendationSummaries",
                                  checkIdentifier=some["checkArn"])] == [some["id"]]
    # Nothing of cost optimizing is prioritized in the sandbox (security and fault tolerance only): none listed.
    assert _all(ta, "list_organization_recommendations", "organizationRecommendationSummaries",
                pillar="cost_optimizing") == []
    security = _all(ta, "list_organization_recommendations", "organizationRecommendationSummaries",
                    pillar="security")
    assert all(r["pillars"] == ["security"] for r in security)
    assert _all(ta, "list_organization_recommendations", "organizationRecommendationSummaries", type="standard") == []
    assert len(_all(ta, "list_organization_recommendations", "organizationRecommendationSummaries",
                    type="priority")) == len(recs)
    errors = _all(ta, "list_organization_recommendation_resources", "organizationRecommendationResourceSummaries",
                  organizationRecommendationIdentifier=some["arn"], status="error")
    assert {r["status"] for r in errors} <= {"error"}


def test_errors_aws_documents(sb, ta, members):
    member = sb.client("trustedadvisor", account_id=members["onboarded"][0], retries=0)
    member.list_checks(maxResults=1)  # any account with a plan reads the catalogue
    with pytest.raises(ClientError) as exc:  # the organization: its management account only
        member.list_organization_recommendations()
    assert (exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDeniedException", 403)
    sb.set_faults(no_support_accounts=[sb.info["management_account_id"]])
    with pytest.raises(ClientError) as exc:  # no Business/Enterprise plan: Access Denied, even for ListChecks
        ta.list_checks()
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    sb.set_faults(no_ta_organization_view=True)
    ta.list_checks()
    with pytest.raises(ClientError) as exc:
        ta.list_organization_recommendations()
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    sb.clear_faults()
    missing = "arn:aws:trustedadvisor:::organization-recommendation/doesnotexist0000"
    with pytest.raises(ClientError) as exc:
        ta.list_organization_recommendation_accounts(organizationRecommendationIdentifier=missing)
    assert (exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ResourceNotFoundException", 404)


def test_an_account_without_a_plan_is_not_in_the_view(sb, ta, members):
    gone = members["onboarded"][1]
    sb.set_faults(no_support_accounts=[gone])
    recs = _recs(ta)
    assert gone not in sb.truth(sections=["trusted_advisor"])["trusted_advisor"]["organization_view"]["accounts"]
    for rec in recs.values():
        listed = _all(ta, "list_organization_recommendation_accounts", "accountRecommendationLifecycleSummaries",
                      organizationRecommendationIdentifier=rec["arn"], affectedAccountId=gone)
        assert listed == []


def test_quota_throttles_with_the_models_error(sb):
    ta = sb.client("trustedadvisor", retries=0)
    sb.set_quotas(scale=0.1)  # 1 call/s, burst 2
    try:
        codes = []
        for _ in range(6):
            try:
                ta.list_organization_recommendations()
                codes.append("ok")
            except ClientError as exc:
                codes.append(exc.response["Error"]["Code"])
                status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
    finally:
        sb.set_quotas(scale=1)
    assert codes[:2] == ["ok", "ok"] and "ThrottlingException" in codes and status == 429
