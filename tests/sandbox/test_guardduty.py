"""The GuardDuty and Macie extensions: seeded detectors and sessions with gaps, findings equal to the truth, the
delegated administrator's view, paging, the API's limits, and criteria the sandbox does not filter on refused."""

from __future__ import annotations

import botocore.exceptions
import pytest

NOT_ARCHIVED_GD = {"Criterion": {"service.archived": {"Eq": ["false"]}}}


@pytest.fixture(scope="module")
def truth(sandbox):
    return sandbox.truth(sections=["guardduty", "macie"])


def _detector(client) -> str:
    return client.list_detectors()["DetectorIds"][0]


def test_seeded_gaps_show_as_no_detector_and_macie_not_enabled(sb, members, truth):
    second, last = members["onboarded"][1], sb.info["regions"][-1]
    assert truth["guardduty"]["accounts"][second][last]["enabled"] is False
    assert sb.client("guardduty", account_id=second, region=last).list_detectors()["DetectorIds"] == []
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sb.client("macie2", account_id=second, region=last).get_macie_session()
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert err.value.response["Error"]["Message"] == "Macie is not enabled."


def test_member_findings_equal_the_truth(sb, members, truth):
    account = members["onboarded"][0]
    for region in sb.info["regions"]:
        state = truth["guardduty"]["accounts"][account][region]
        if not state["enabled"]:
            continue
        gd = sb.client("guardduty", account_id=account, region=region)
        detector = _detector(gd)
        ids = gd.list_findings(DetectorId=detector)["FindingIds"]
        assert sorted(ids) == sorted(f["id"] for f in state["findings"])
        if ids:
            got = {f["Id"]: f for f in gd.get_findings(DetectorId=detector, FindingIds=ids)["Findings"]}
            for f in state["findings"]:
                assert (got[f["id"]]["Type"], got[f["id"]]["Severity"]) == (f["type"], f["severity"])


def test_admin_sees_enabled_members_and_filters_by_account(sb, members, truth):
    region = sb.info["regions"][0]
    gd = sb.client("guardduty", region=region)
    detector = _detector(gd)
    everything = set(gd.get_paginator("list_findings").paginate(DetectorId=detector).build_full_result()["FindingIds"])
    want = {f["id"] for a, per in truth["guardduty"]["accounts"].items()
            if a == truth["guardduty"]["admin"] or per[region]["relationship"] == "Enabled"
            for f in per[region]["findings"]}
    assert everything == want
    account = members["onboarded"][0]
    mine = gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {
        "accountId": {"Eq": [account]}, **NOT_ARCHIVED_GD["Criterion"]}})["FindingIds"]
    assert set(mine) == {f["id"] for f in truth["guardduty"]["accounts"][account][region]["findings"]
                         if not f["service"]["archived"]}
    status = gd.get_members(DetectorId=detector, AccountIds=[account, members["new"][0]])
    assert [m["AccountId"] for m in status["Members"]] == [account]
    assert [u["AccountId"] for u in status["UnprocessedAccounts"]] == [members["new"][0]]


def test_a_member_sees_only_its_own_findings(sb, members, truth):
    account, other = members["onboarded"][0], members["onboarded"][2]
    region = sb.info["regions"][0]
    gd = sb.client("guardduty", account_id=account, region=region)
    ids = gd.list_findings(DetectorId=_detector(gd), FindingCriteria={"Criterion": {"accountId": {"Eq": [other]}}})
    assert ids["FindingIds"] == []


def test_paging_and_limits(sb, truth):
    region = sb.info["regions"][0]
    gd = sb.client("guardduty", region=region)
    detector = _detector(gd)
    pages = list(gd.get_paginator("list_findings").paginate(DetectorId=detector, PaginationConfig={"PageSize": 2}))
    assert len(pages) >= 2 and all(len(p["FindingIds"]) <= 2 for p in pages)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        gd.get_findings(DetectorId=detector, FindingIds=[f"id{i}" for i in range(51)])
    assert err.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {"resource.resourceType": {"Eq": ["x"]}}})
    assert "does not filter on 'resource.resourceType'" in err.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        gd.list_findings(DetectorId="0" * 32)
    assert err.value.response["Error"]["Code"] == "BadRequestException"


def test_macie_admin_findings_and_member_relationship(sb, members, truth):
    region = sb.info["regions"][0]
    macie = sb.client("macie2", region=region)
    ids = macie.get_paginator("list_findings").paginate(
        findingCriteria={"criterion": {"archived": {"eq": ["false"]}}}).build_full_result()["findingIds"]
    want = {f["id"] for a, per in truth["macie"]["accounts"].items()
            if a == truth["macie"]["admin"] or per[region]["relationship"] == "Enabled"
            for f in per[region]["findings"] if not f["archived"]}
    assert set(ids) == want
    second, last = members["onboarded"][1], sb.info["regions"][-1]
    assert sb.client("macie2", region=last).get_member(id=second)["relationshipStatus"] == "RegionDisabled"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        macie.get_member(id=members["new"][0])
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_enabling_in_a_gap_brings_findings(sb, members):
    second, last = members["onboarded"][1], sb.info["regions"][-1]
    gd = sb.client("guardduty", account_id=second, region=last)
    detector = gd.create_detector(Enable=True)["DetectorId"]
    try:
        assert sb.truth(sections=["guardduty"])["guardduty"]["accounts"][second][last]["enabled"] is True
        assert gd.list_findings(DetectorId=detector)["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        gd.delete_detector(DetectorId=detector)
    assert sb.truth(sections=["guardduty"])["guardduty"]["accounts"][second][last]["enabled"] is False


@pytest.mark.parametrize(("service", "limit", "error"), [
    pytest.param("macie2", 25, "ValidationException", id="macie2"),
    pytest.param("guardduty", 50, "BadRequestException", id="guardduty"),
])
def test_list_members_names_every_member_with_its_state_paged(sb, members, truth, service, limit, error):
    region = sb.info["regions"][-1]  # where the second onboarded member has the service off
    section = truth["macie" if service == "macie2" else "guardduty"]
    want = {a: per[region]["relationship"] for a, per in section["accounts"].items() if per[region]["relationship"]}
    client = sb.client(service, region=region)
    args = {} if service == "macie2" else {"DetectorId": _detector(client)}
    key, only = ("members", "onlyAssociated") if service == "macie2" else ("Members", "OnlyAssociated")
    pages = list(client.get_paginator("list_members").paginate(**args, **{only: "false"},
                                                               PaginationConfig={"PageSize": 2}))
    got = {m["accountId" if service == "macie2" else "AccountId"]: m["relationshipStatus" if service == "macie2"
                                                                       else "RelationshipStatus"]
           for p in pages for m in p[key]}
    assert got == want and len(pages) == -(-len(want) // 2)
    assert members["onboarded"][1] in got and members["new"][0] not in got
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.list_members(**args, **{"maxResults" if service == "macie2" else "MaxResults": limit + 1})
    assert err.value.response["Error"]["Code"] == error
