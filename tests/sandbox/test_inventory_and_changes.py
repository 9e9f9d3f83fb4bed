"""The sandbox's SSM inventory, the aggregator's advanced query, Config resource history and CloudTrail LookupEvents:
answers equal the truth, pages are bound to their query, and unsupported input gets AWS's error codes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError

ADVANCED = ("SELECT resourceId, accountId, awsRegion, configuration "
            "WHERE resourceType = 'AWS::SSM::ManagedInstanceInventory'")


@pytest.fixture(scope="module")
def fleet(sandbox):
    truth = sandbox.truth(sections=["inventory", "changes"])
    account = max(truth["inventory"], key=lambda a: sum(len(v) for v in truth["inventory"][a].values()))
    region = max(truth["inventory"][account], key=lambda r: len(truth["inventory"][account][r]))
    return {"truth": truth, "account": account, "region": region}


def _code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def test_get_inventory_pages_through_every_instance(sandbox, fleet):
    ssm = sandbox.client("ssm", account_id=fleet["account"], region=fleet["region"])
    ids, token = [], None
    while True:
        page = ssm.get_inventory(MaxResults=1, **({"NextToken": token} if token else {}))
        ids += [e["Id"] for e in page["Entities"]]
        token = page.get("NextToken")
        if not token:
            break
    assert ids == [i["instance_id"] for i in fleet["truth"]["inventory"][fleet["account"]][fleet["region"]]]


def test_list_inventory_entries_equal_the_truth_and_errors_have_aws_codes(sandbox, fleet):
    ssm = sandbox.client("ssm", account_id=fleet["account"], region=fleet["region"])
    inst = fleet["truth"]["inventory"][fleet["account"]][fleet["region"]][0]
    page = ssm.list_inventory_entries(InstanceId=inst["instance_id"], TypeName="AWS:Application")
    assert [(e["Name"], e["Version"], e["Publisher"]) for e in page["Entries"]] == [
        (a["name"], a["version"], a["publisher"]) for a in inst["applications"]]
    with pytest.raises(ClientError) as err:
        ssm.list_inventory_entries(InstanceId="i-0000000000000000", TypeName="AWS:Application")
    assert _code(err) == "InvalidInstanceId"
    with pytest.raises(ClientError) as err:
        ssm.get_inventory(ResultAttributes=[{"TypeName": "AWS:Application"}, {"TypeName": "AWS:InstanceInformation"}])
    assert _code(err) == "ValidationException"


def test_advanced_query_serves_the_same_inventory_and_refuses_what_it_cannot_answer(sandbox, fleet):
    cfg = sandbox.client("config", region="us-east-1")
    name = sandbox.info["config_aggregator"]
    results, token = [], None
    while True:
        page = cfg.select_aggregate_resource_config(ConfigurationAggregatorName=name, Expression=ADVANCED, Limit=5,
                                                    **({"NextToken": token} if token else {}))
        results += [json.loads(r) for r in page["Results"]]
        token = page.get("NextToken")
        if not token:
            break
    expected = {(a, r, i["instance_id"]) for a, regions in fleet["truth"]["inventory"].items()
                for r, instances in regions.items() for i in instances}
    assert {(r["accountId"], r["awsRegion"], r["resourceId"]) for r in results} == expected
    with pytest.raises(ClientError) as err:
        cfg.select_aggregate_resource_config(ConfigurationAggregatorName=name, Expression="SELECT * LIMIT 5")
    assert _code(err) == "InvalidExpressionException"


def test_history_and_trail_name_the_seeded_change(sandbox, fleet):
    changes = fleet["truth"]["changes"]
    account = next(a for a in changes if a != sandbox.info["management_account_id"])
    region = next(iter(changes[account]))
    key, seeded = next(iter(changes[account][region].items()))
    rtype, rid = key.split("/", 1)
    cfg = sandbox.client("config", account_id=account, region=region)
    captured = dt.datetime.fromisoformat(seeded["captured_at"])
    items = cfg.get_resource_config_history(resourceType=rtype, resourceId=rid, laterTime=captured,
                                            limit=1)["configurationItems"]
    assert items[0]["configurationItemCaptureTime"] == captured and items[0]["relatedEvents"] == [seeded["event_id"]]
    trail = sandbox.client("cloudtrail", account_id=account, region=region)
    events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": seeded["event_id"]}],
                                 StartTime=captured - dt.timedelta(hours=1), EndTime=captured)["Events"]
    assert len(events) == 1 and events[0]["EventName"] == seeded["event_name"]
    record = json.loads(events[0]["CloudTrailEvent"])
    assert (record["userIdentity"]["arn"], record["sourceIPAddress"]) == (seeded["principal_arn"], seeded["source_ip"])
    with pytest.raises(ClientError) as err:
        cfg.get_resource_config_history(resourceType="AWS::::Account", resourceId=account)
    assert _code(err) == "ResourceNotDiscoveredException"
    with pytest.raises(ClientError) as err:
        trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "x"},
                                              {"AttributeKey": "ResourceName", "AttributeValue": rid}])
    assert _code(err) == "InvalidLookupAttributesException"
