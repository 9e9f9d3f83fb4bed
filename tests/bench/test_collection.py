"""bench/collection.py's arithmetic: the latency floor without latency, and the quota bound."""

from __future__ import annotations

import pytest

from bench.collection import DAY, best_ratio, bucket_differences, quota_bound, sandbox_quota_bound, truth_check
from sandbox.quotas import QuotaModel

MODEL = {"enabled": True, "active": True, "scale": 1.0, "default": {"rate": 10, "burst": 20},
         "services": {"s3": {"default": {"rate": 5500, "burst": 5500}},
                      "cloudtrail": {"default": {"rate": 10, "burst": 20}, "operations": {"LookupEvents": {
                          "rate": 2, "burst": 2}}}}}


def test_best_ratio_without_added_latency_is_none_not_a_division_by_zero():
    assert best_ratio(0.0, 8, 2, 3.0, 2.0) is None
    assert best_ratio(20.0, 8, 2, 1.0, 1.0) == max((20 + 2) / 8, 2 / 2, 1.0) / (20 / 8)


def test_quota_bound_is_the_slowest_bucket_after_its_burst():
    buckets = {("111111111111", "us-east-1", "cloudtrail", "LookupEvents"): 12,  # (12 - 2) / 2 = 5 s
               ("111111111111", "us-east-1", "s3", "GetObject"): 11000,  # (11000 - 5500) / 5500 = 1 s
               ("222222222222", "us-east-1", "guardduty", "ListFindings"): 15}  # within its burst: 0 s
    seconds, where = quota_bound(buckets, MODEL)
    assert seconds == 5.0 and where.startswith("cloudtrail.LookupEvents 111111111111")
    assert quota_bound(buckets, {**MODEL, "scale": 2.0})[0] == 2.0  # (12 - 4) / 4
    assert quota_bound(buckets, {**MODEL, "active": False})[0] == 0.0


def test_quota_bound_skips_unlimited_services_and_keeps_one_token_at_small_scales():
    model = {**MODEL, "services": {**MODEL["services"], "sqs": {"unlimited": True}}}
    assert quota_bound({("1", "us-east-1", "sqs", "ReceiveMessage"): 10_000}, model) == (0.0, "")
    # scale 0.01: rate 0.1/s, burst max(1, 0.2) = 1 token (sandbox/quotas.py QuotaModel.admit)
    seconds, _ = quota_bound({("1", "us-east-1", "guardduty", "ListFindings"): 11}, {**MODEL, "scale": 0.01})
    assert seconds == pytest.approx(100.0)


def test_sandbox_bound_is_the_time_the_sandboxs_own_buckets_took_to_admit_the_calls():
    """A client that retries every refused call at once, against the sandbox's QuotaModel on a fake clock: the bound
    from the buckets' admitted counts is the time the slowest bucket took (to one retry step), and the refusals
    (the retries) do not count."""
    now = [0.0]
    model = QuotaModel(clock=lambda: now[0])
    calls = {("111111111111", "eu-west-1", "cloudtrail", "LookupEvents"): 12,  # 2/s, burst 2: (12 - 2) / 2 = 5 s
             ("111111111111", "eu-west-1", "config", "DescribeConfigRules"): 40,  # 10/s, burst 20: 2 s
             ("222222222222", "us-east-1", "sqs", "ReceiveMessage"): 500}  # not throttled: no bucket
    left = dict(calls)
    while any(left.values()):
        for key, n in left.items():
            if n and model.admit(*key):
                left[key] -= 1
        now[0] += 0.001
    counts = {"buckets": model.buckets()}
    seconds, where = sandbox_quota_bound(counts, model.describe())
    assert seconds == 5.0 and where.startswith("cloudtrail.LookupEvents 111111111111 eu-west-1: 12 calls")
    assert now[0] == pytest.approx(5.0, abs=0.002)
    assert sum(b["throttled"] for b in counts["buckets"]) > 0  # the retries were refused, and left out
    assert bucket_differences(calls, counts, model.describe()) == []


def test_bucket_differences_name_the_buckets_whose_counts_differ():
    model = QuotaModel().describe()
    counts = {"buckets": [{"account": "1", "region": "us-east-1", "service": "guardduty", "operation": "ListFindings",
                           "admitted": 9, "throttled": 3}]}
    client = {("1", "us-east-1", "guardduty", "ListFindings"): 10, ("1", "us-east-1", "sqs", "ReceiveMessage"): 4}
    # one call gave up after its retries: counted by the client, never admitted; SQS has no bucket to compare with
    assert bucket_differences(client, counts, model) == ["guardduty.ListFindings 1 us-east-1: client 10, sandbox 9"]
    assert bucket_differences(client, {"buckets": []}, {**model, "active": False}) == []


# -- the truth check, a slice of accounts at a time -------------------------------------------------------------------
ACCOUNTS = ["111111111111", "222222222222", "333333333333"]
REGIONS = ["us-east-1", "eu-west-1"]


def _evaluation(resource: str, compliance: str = "NON_COMPLIANT") -> dict:
    return {"resource_type": "AWS::S3::Bucket", "resource_id": resource, "compliance": compliance}


class FakeSandbox:
    """The two things truth_check asks the sandbox: its accounts and the truth of a few accounts."""

    def __init__(self) -> None:
        self.info = {"accounts": [{"id": a, "read_role": a != "333333333333"} for a in ACCOUNTS]}
        self.asked: list[list[str]] = []
        config = {a: {r: {"s3-encrypted": [_evaluation(f"b-{a}-{r}-{k}") for k in range(3)]} for r in REGIONS}
                  for a in ACCOUNTS}
        del config["222222222222"]["eu-west-1"]  # no snapshot delivered there: a seeded gap
        threat = {a: {r: {"enabled": True, "relationship": "Enabled",
                          "findings": [{"id": f"f-{a}-{r}", "archived": False, "service": {"archived": False}},
                                       {"id": f"old-{a}-{r}", "archived": True, "service": {"archived": True}}]}
                      for r in REGIONS} for a in ACCOUNTS[:2]}  # the role-less account is a gap, findings unknown
        threat["333333333333"] = {}
        inventory = {a: {r: [{"instance_id": f"i-{a[:3]}", "applications": [{"name": "curl", "version": "8.0"}]}]
                         for r in REGIONS} for a in ACCOUNTS}
        self._truth = {"config": config, "inventory": inventory,
                       "guardduty": {"accounts": threat}, "macie": {"accounts": threat}}

    def truth(self, date: str, sections: list[str], accounts: list[str]) -> dict:
        self.asked.append(list(accounts))
        return {"config": {a: v for a, v in self._truth["config"].items() if a in accounts},
                "inventory": {a: v for a, v in self._truth["inventory"].items() if a in accounts},
                **{s: {"accounts": {a: v for a, v in self._truth[s]["accounts"].items() if a in accounts}}
                   for s in ("guardduty", "macie")}}


def _store_as_collected(store, sb: FakeSandbox) -> dict[str, dict[str, list[dict]]]:
    """Per account and table, the rows an exact collection stores (no delegated administrators)."""
    rows: dict[str, dict[str, list[dict]]] = {a: {} for a in ACCOUNTS}
    t = sb._truth
    for a in ACCOUNTS:
        rows[a]["config_findings"] = [
            {"account_id": a, "region": r, "rule_name": rule, "resource_type": e["resource_type"],
             "resource_id": e["resource_id"], "compliance": e["compliance"]}
            for r, rules in t["config"][a].items() for rule, evs in rules.items() for e in evs]
        for source, table, column in (("guardduty", "guardduty_findings", "guardduty_id"),
                                      ("macie", "macie_findings", "macie_id")):
            rows[a][table] = [{"account_id": a, "region": r, column: f["id"]}
                              for r, state in t[source]["accounts"][a].items() for f in state["findings"]
                              if not f["archived"]]
        rows[a]["software_inventory"] = [
            {"account_id": a, "region": r, "instance_id": i["instance_id"], "name": app["name"],
             "version": app["version"]} for r, insts in t["inventory"][a].items() for i in insts
            for app in i["applications"]]
        cov = [{"account_id": a, "region": r, "source": "config",
                "status": "ok" if r in t["config"][a] else "not_delivered"} for r in REGIONS]
        for source in ("guardduty", "macie"):
            cov += [{"account_id": a, "region": r, "source": source,
                     "status": "ok" if a != "333333333333" else "access_denied"} for r in REGIONS]
        if a == "333333333333":
            cov.append({"account_id": a, "region": "global", "source": "trusted_advisor", "status": "access_denied"})
        rows[a]["coverage"] = cov
    return rows


def _write(store, rows: dict[str, dict[str, list[dict]]]) -> None:
    import pyarrow as pa

    from include.awsgov.core import tables

    for account, by_table in rows.items():
        for table, table_rows in by_table.items():
            schema = tables.SCHEMAS[table]
            store.write(table, DAY, pa.Table.from_pylist(table_rows, schema=schema), chunk=account, schema=schema)


@pytest.fixture
def no_whole_day_reads(monkeypatch):
    from include.awsgov.core.store import Store

    def refuse(*_a, **_k):
        raise AssertionError("the truth check read a whole day of a table")

    monkeypatch.setattr(Store, "read", refuse)
    monkeypatch.setattr(Store, "scan", refuse)


def test_truth_check_of_an_exact_store_is_clean_and_asks_a_slice_at_a_time(tmp_path, no_whole_day_reads):
    from include.awsgov.core.store import Store

    sb, store = FakeSandbox(), Store(tmp_path / "store")
    _write(store, _store_as_collected(store, sb))
    out = truth_check(sb, store, ACCOUNTS, REGIONS, {}, slice_size=2)
    assert sb.asked == [ACCOUNTS[:2], ACCOUNTS[2:]]
    assert out["config"] == {"truth": 15, "stored": 15, "lost": 0, "unexpected": 0, "duplicated": 0}
    assert out["guardduty"] == out["macie"] == {"truth": 4, "stored": 4, "lost": 0, "unexpected": 0, "duplicated": 0}
    assert out["inventory"]["stored"] == out["inventory"]["truth"] == 6
    assert out["config_wrong_compliance"] == 0
    assert out["gaps"]["equal"] and out["gaps"]["stored"] == out["gaps"]["seeded"] == 6
    assert out["gaps"]["by_status"] == {"not_delivered": 1, "access_denied": 5}


def test_truth_check_counts_every_lost_duplicated_unexpected_row_and_gap_across_slices(tmp_path, no_whole_day_reads):
    from include.awsgov.core.store import Store

    sb, store = FakeSandbox(), Store(tmp_path / "store")
    rows = _store_as_collected(store, sb)
    a, b, c = ACCOUNTS
    rows[a]["config_findings"].pop()  # lost, first slice
    rows[c]["config_findings"].append(dict(rows[c]["config_findings"][0]))  # duplicated, second slice
    rows[c]["config_findings"][1]["compliance"] = "COMPLIANT"  # stored once, with a compliance the truth never had
    rows[b]["guardduty_findings"].append({"account_id": b, "region": "us-east-1", "guardduty_id": f"old-{b}-us-east-1"})
    # a row filed under another account's chunk still counts, under its own account
    rows[b]["macie_findings"].append(dict(rows[a]["macie_findings"].pop()))
    rows[c]["coverage"] = [r for r in rows[c]["coverage"] if r["source"] != "trusted_advisor"]  # a missing gap
    rows["444444444444"] = {"software_inventory": [{"account_id": "444444444444", "region": "us-east-1",
                                                    "instance_id": "i-4", "name": "zsh", "version": "5"}]}
    _write(store, rows)
    out = truth_check(sb, store, ACCOUNTS, REGIONS, {}, slice_size=2)
    assert out["accounts_compared"] == 4 and out["slices"] == 2  # the chunk without coverage is compared too
    assert out["config"] == {"truth": 15, "stored": 15, "lost": 1, "unexpected": 0, "duplicated": 1}
    assert out["config_wrong_compliance"] == 1
    assert out["guardduty"] == {"truth": 4, "stored": 5, "lost": 0, "unexpected": 1, "duplicated": 0}
    assert out["macie"] == {"truth": 4, "stored": 4, "lost": 0, "unexpected": 0, "duplicated": 0}
    assert out["inventory"] == {"truth": 6, "stored": 7, "lost": 0, "unexpected": 1, "duplicated": 0}
    # the stray account has no Config in the truth either: its regions are seeded gaps it did not store
    assert not out["gaps"]["equal"] and out["gaps"]["missing"] == [
        "('333333333333', 'global', 'trusted_advisor'): access_denied",
        "('444444444444', 'eu-west-1', 'config'): not_delivered",
        "('444444444444', 'us-east-1', 'config'): not_delivered"]
