"""bench/collection.py's arithmetic: the latency floor without latency, and the quota bound."""

from __future__ import annotations

from bench.collection import best_ratio, quota_bound

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
