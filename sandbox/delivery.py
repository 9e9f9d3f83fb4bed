"""Daily deliveries into the central bucket, in AWS's layouts and formats: Config configuration snapshots
(config/snapshot.py), SSM inventory through a resource data sync (ssm/datasync.py) and CloudTrail log files
(cloudtrail/logfiles.py).

A day is delivered once (for CloudTrail: the events of the day before, the last complete day), the first time it
is needed: the first S3 request on a sandbox date (the server asks :meth:`Deliveries.ensure` before handing any S3
call to moto), or ``POST /_sandbox/deliveries {"date": ...}``.
Objects are written straight into moto's S3 backend of the management account, where they are listed and read
like any other object. Who delivers what follows the seeded baseline: every onboarded, active member account has a
Config delivery channel (bucket and s3KeyPrefix read from moto) in every region, a multi-region trail (bucket and
prefix read from moto) and, as the baseline would create, a resource data sync to ``<central bucket>/
<inventory_sync_prefix>`` in every region.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from typing import Any

log = logging.getLogger(__name__)


class Deliveries:
    """What has been delivered, per day, and the delivering itself (thread-safe, once per day).

    :param world: the running world.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        self._lock = threading.Lock()
        self._done: dict[str, dict[str, Any]] = {}

    def ensure(self, day: dt.date) -> dict[str, Any]:
        """Deliver ``day`` unless already delivered; the delivery's summary."""
        key = day.isoformat()
        done = self._done.get(key)
        if done is not None:
            return done
        with self._lock:
            if key not in self._done:
                self._done[key] = self._deliver(day)
            return self._done[key]

    def summary(self) -> dict[str, Any]:
        """{date: {"objects": {kind: count}, "seconds"}} of every delivered day."""
        return dict(self._done)

    def _deliver(self, day: dt.date) -> dict[str, Any]:
        from moto.s3.models import s3_backends

        from .cloudtrail.logfiles import log_files
        from .config.snapshot import snapshot
        from .ssm.datasync import sync_objects

        t0 = time.perf_counter()
        s = self.world.settings
        s3 = s3_backends[s.management_account_id]["aws"]
        counts: Counter[str] = Counter()

        def put(kind: str, bucket: str, key: str, body: bytes) -> None:
            if bucket not in s3.buckets:
                log.warning("delivery bucket %s does not exist; %s not delivered", bucket, key)
                return
            s3.put_object(bucket, key, body)
            counts[kind] += 1

        for account_id in self.world.active_member_ids():
            plan = self.world.plan.by_id()[account_id]
            if not plan.read_role:
                continue
            for region in s.regions:
                channel = _delivery_channel(account_id, region)
                if channel is not None:
                    made = snapshot(self.world, account_id, region, day, channel.get("s3KeyPrefix") or "")
                    if made:
                        put("config_snapshots", channel["s3BucketName"], *made)
                for key, body in sync_objects(self.world, account_id, region, day, s.inventory_sync_prefix):
                    put("inventory_objects", s.central_bucket, key, body)
            # The sandbox's "now" is the start of its day: the trail has delivered the whole previous day (the
            # day's own changes happen in its evening, as LookupEvents sees them).
            for trail in _trails(account_id):
                org_id = self.world.plan.organization_id if trail.is_org_trail else None
                regions = s.regions if trail.is_multi_region else [trail.region_name]
                for region in regions:
                    for key, body in log_files(self.world, account_id, region, day - dt.timedelta(days=1),
                                               trail.s3_key_prefix or "", org_id):
                        put("cloudtrail_files", trail.bucket_name, key, body)
        summary = {"objects": dict(counts), "seconds": round(time.perf_counter() - t0, 3)}
        log.info("delivered %s: %s", day, summary)
        return summary


def _delivery_channel(account_id: str, region: str) -> dict[str, Any] | None:
    """The account's and region's Config delivery channel as moto holds it (bucket, prefix), None without one."""
    from moto.config.models import config_backends

    if account_id not in config_backends or region not in config_backends[account_id].keys():
        return None
    channels = config_backends[account_id][region].delivery_channels
    for channel in channels.values():
        return {"s3BucketName": channel.s3_bucket_name, "s3KeyPrefix": channel.s3_key_prefix}
    return None


def _trails(account_id: str) -> list[Any]:
    """The account's logging trails (home region and any other), as moto holds them."""
    from moto.cloudtrail.models import cloudtrail_backends

    if account_id not in cloudtrail_backends:
        return []
    out = []
    for region in cloudtrail_backends[account_id].keys():
        for trail in cloudtrail_backends[account_id][region].trails.values():
            if trail.status.is_logging and trail.region_name == region:
                out.append(trail)
    return out
