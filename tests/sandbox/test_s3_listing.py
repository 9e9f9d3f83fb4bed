"""Prefix listings answered from sorted key names (sandbox/s3/listing.py) are moto's own answers: the same keys,
folders, order and pages, before and after keys are put, overwritten and deleted."""

from __future__ import annotations

import pytest
from moto.s3.models import s3_backends

from sandbox.s3 import listing

ACCOUNT = "123456789012"
BUCKET = "test-prefix-listing"


@pytest.fixture
def backend():
    listing.install()
    s3 = s3_backends[ACCOUNT]["global"]
    s3.create_bucket(BUCKET, "us-east-1")
    yield s3
    for name in list(s3.get_bucket(BUCKET).keys):
        s3.delete_object(BUCKET, name)
    s3.delete_bucket(BUCKET)


def _moto(s3, bucket, prefix, delimiter, max_keys=None):
    # moto's own scan: the bucket's whole key store (the installed method is the only one narrowing it)
    original = listing.original_list_objects()
    return original(s3, bucket, prefix, delimiter, None, max_keys)


def _names(result):
    keys, folders, truncated, marker = result
    return [k.name for k in keys], list(folders), truncated, marker


def _put(s3, names):
    for name in names:
        s3.put_object(BUCKET, name, name.encode())


PREFIXES = ["AWSLogs/1/", "AWSLogs/1/Config/us-east-1/2026/11/23/", "AWSLogs/2", "AWSLogs/", "a", "zzz",
            "AWSLogs/1/Config/"]


@pytest.mark.parametrize("delimiter", [None, "/"])
def test_prefix_listings_equal_moto_scans_through_puts_and_deletes(backend, delimiter):
    names = [f"AWSLogs/{a}/Config/{r}/2026/11/{d}/ConfigSnapshot/{a}_{r}_{d}.json.gz"
             for a in (1, 2, 10) for r in ("us-east-1", "eu-west-1") for d in (22, 23)]
    names += ["AWSLogs/1/CloudTrail/us-east-1/2026/11/22/f.json.gz", "AWSLogs/", "a", "ab/c", "inventory/x"]
    _put(backend, names)
    bucket = backend.get_bucket(BUCKET)

    def same() -> None:
        for prefix in PREFIXES:
            for max_keys in (None, 2):
                got = _names(backend.list_objects(bucket, prefix, delimiter, None, max_keys))
                assert got == _names(_moto(backend, bucket, prefix, delimiter, max_keys)), (prefix, max_keys)
        assert backend.list_objects_v2(bucket, "AWSLogs/1/", delimiter, None, None, 1000)[0]  # through v2 too

    same()
    assert _names(backend.list_objects(bucket, "AWSLogs/1/Config/us-east-1/", None, None, None))[0] == [
        "AWSLogs/1/Config/us-east-1/2026/11/22/ConfigSnapshot/1_us-east-1_22.json.gz",
        "AWSLogs/1/Config/us-east-1/2026/11/23/ConfigSnapshot/1_us-east-1_23.json.gz"]
    _put(backend, ["AWSLogs/1/Config/us-east-1/2026/11/24/ConfigSnapshot/new.json.gz", "AWSLogs/10/x", "a"])
    backend.delete_object(BUCKET, "AWSLogs/2/Config/eu-west-1/2026/11/22/ConfigSnapshot/2_eu-west-1_22.json.gz")
    backend.delete_object(BUCKET, "ab/c")
    same()
    assert "AWSLogs/1/Config/us-east-1/2026/11/24/ConfigSnapshot/new.json.gz" in _names(
        backend.list_objects(bucket, "AWSLogs/1/Config/", None, None, None))[0]
