"""Prefix listings of a big bucket without a scan of all its keys.

moto answers ``ListObjects``/``ListObjectsV2`` with a prefix by copying the bucket's whole key store and testing
every key (moto.s3.models ``S3Backend.list_objects``: ``for key_name, key in bucket.keys.items(): if
key_name.startswith(prefix)``). The central bucket holds every account's Config snapshots, inventory sync objects
and CloudTrail files, so each listing of one account's folder cost time in proportion to the whole organization (at
1,000 accounts x 4 regions, tens of thousands of keys, for each of the collection's 8 listings per account).

Here a prefix listing hands moto only the keys that start with the prefix, found by bisection in a sorted list of
the bucket's key names; moto does the rest as before (delimiter, delete markers, order, MaxKeys, continuation), so
the answer is the same. The sorted names are rebuilt after any change to the key store (every mutating method of
moto's ``_VersionedKeyStore`` counts a generation, after the change).
"""

from __future__ import annotations

import bisect
import threading
from typing import Any

_MUTATORS = ("__setitem__", "__delitem__", "setlist", "pop", "popitem", "clear", "update", "setdefault")
_LOCK = threading.Lock()


class _Narrowed:
    """A bucket whose key store holds only the keys of one prefix; everything else is the bucket's."""

    def __init__(self, bucket: Any, keys: Any) -> None:
        self._bucket = bucket
        self.keys = keys

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bucket, name)


def sorted_names(keys: Any) -> list[str]:
    """The key names of a key store, sorted; rebuilt when the store changed since the last call."""
    generation = getattr(keys, "_sandbox_generation", 0)  # read before the names: a change after it rebuilds again
    index = getattr(keys, "_sandbox_index", None)
    if index is None or index[0] != generation:
        with _LOCK:
            index = (generation, sorted(dict.keys(keys)))
            keys._sandbox_index = index
    return index[1]


def with_prefix(keys: Any, prefix: str) -> Any:
    """A key store of the same class holding only the keys (all their versions) that start with ``prefix``."""
    names = sorted_names(keys)
    narrowed = type(keys)()
    for i in range(bisect.bisect_left(names, prefix), len(names)):
        name = names[i]
        if not name.startswith(prefix):
            break
        versions = dict.get(keys, name)
        if versions is not None:  # deleted since the names were sorted
            dict.__setitem__(narrowed, name, versions)
    return narrowed


def original_list_objects() -> Any:
    """moto's own ``S3Backend.list_objects`` (the scan), installed or not."""
    from moto.s3.models import S3Backend

    method = S3Backend.list_objects
    return getattr(method, "sandbox_original", method)


def install() -> None:
    """Answer moto's prefix listings from the sorted names (idempotent)."""
    from moto.s3 import utils
    from moto.s3.models import FakeTableStorageBucket, S3Backend

    store_class = utils._VersionedKeyStore  # the class of every bucket's key store (moto/s3/utils.py)

    original = S3Backend.list_objects
    if getattr(original, "sandbox_indexed", False):
        return
    for name in _MUTATORS:
        mutate = getattr(store_class, name)

        def counted(self: Any, *args: Any, _mutate: Any = mutate, **kwargs: Any) -> Any:
            try:
                return _mutate(self, *args, **kwargs)
            finally:
                self._sandbox_generation = getattr(self, "_sandbox_generation", 0) + 1

        setattr(store_class, name, counted)

    def list_objects(self: Any, bucket: Any, prefix: str | None, delimiter: str | None, marker: str | None,
                     max_keys: int | None) -> Any:
        keys = getattr(bucket, "keys", None)
        if not prefix or isinstance(bucket, FakeTableStorageBucket) or not isinstance(keys, store_class):
            return original(self, bucket, prefix, delimiter, marker, max_keys)
        return original(self, _Narrowed(bucket, with_prefix(keys, prefix)), prefix, delimiter, marker, max_keys)

    list_objects.sandbox_indexed = True  # type: ignore[attr-defined]
    list_objects.sandbox_original = original  # type: ignore[attr-defined]
    S3Backend.list_objects = list_objects  # type: ignore[method-assign]
