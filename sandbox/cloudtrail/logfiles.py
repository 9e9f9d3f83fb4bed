"""CloudTrail log files as a trail delivers them to its S3 bucket: gzip'd JSON ``{"Records": [...]}``.

Object key (AWS CloudTrail User Guide, "Finding your CloudTrail log files" and "CloudTrail log file examples",
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html)::

    <prefix>/AWSLogs/[<o-orgid>/]<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<UniqueString>.json.gz

``YYYYMMDDTHHmmZ`` is the delivery time (UTC); a file holds records written at any point before it. The
16-character UniqueString only prevents overwrites. The organization id level exists for organization trails only.
CloudTrail delivers about every five minutes: the records are grouped by five-minute window, each file delivered
at its window's end.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import string
from collections.abc import Iterator
from typing import Any

from .. import det
from .models import record

WINDOW = dt.timedelta(minutes=5)
_ALPHABET = string.ascii_letters + string.digits


def object_key(prefix: str, org_id: str | None, account_id: str, region: str, delivered: dt.datetime,
               unique: str) -> str:
    """The S3 key of one log file.

    :param prefix: the trail's S3KeyPrefix ('' for none).
    :param org_id: the organization id for an organization trail, else None.
    :param delivered: delivery time (UTC).
    :param unique: the 16-character UniqueString.
    """
    parts = [prefix.strip("/")] if prefix and prefix.strip("/") else []
    parts.append("AWSLogs")
    if org_id:
        parts.append(org_id)
    parts += [account_id, "CloudTrail", region, f"{delivered:%Y}", f"{delivered:%m}", f"{delivered:%d}",
              f"{account_id}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{unique}.json.gz"]
    return "/".join(parts)


def unique_string(*parts: object) -> str:
    """A deterministic 16-character UniqueString."""
    return "".join(_ALPHABET[det.digest(*parts, k) % len(_ALPHABET)] for k in range(16))


def log_files(world: Any, account_id: str, region: str, day: dt.date, prefix: str,
              org_id: str | None) -> Iterator[tuple[str, bytes]]:
    """(key, gzip'd body) of every log file the trail delivers for ``day`` in ``region``.

    :param world: the running world (its ChangeModel supplies the events).
    """
    by_window: dict[dt.datetime, list[dict[str, Any]]] = {}
    for event in world.changes.events_on(account_id, region, day):
        t = event["event_time"]
        start = t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0)
        by_window.setdefault(start + WINDOW, []).append(event)
    seed = world.settings.seed
    for delivered, events in sorted(by_window.items()):
        key = object_key(prefix, org_id, account_id, region, delivered,
                         unique_string(seed, "cloudtrail-file", account_id, region, delivered.isoformat()))
        body = json.dumps({"Records": [record(e) for e in events]}, separators=(",", ":")).encode("utf-8")
        yield key, gzip.compress(body, mtime=0)
