"""SSM Inventory as a resource data sync (``SyncToDestination``, JsonSerDe) writes it to its S3 bucket.

Layout (AWS Systems Manager User Guide, "Configuring resource data sync for Inventory"
https://docs.aws.amazon.com/systems-manager/latest/userguide/inventory-create-resource-data-sync.html, and the AWS
Management Tools blog "Understanding AWS Systems Manager Inventory Metadata", which lists one prefix per inventory
type under the sync's bucket and prefix)::

    <prefix>/<inventory type>/accountid=<account>/region=<region>/resourcetype=ManagedInstanceInventory/<instance>.json

with ``<inventory type>`` ``AWS:InstanceInformation`` and ``AWS:Application`` here. One object per managed instance
and type, replaced when the instance reports again. Each object holds one JSON record per line (the JsonSerDe
layout Athena and Glue read): the inventory entry's attributes as ``ListInventoryEntries`` names them, plus
``resourceId``, ``captureTime`` and ``schemaVersion``. The record shape is this sandbox's reading of AWS's examples,
not a documented schema (docs/quotas.md, "Central bucket").
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from .models import APPLICATION, INSTANCE_INFORMATION, SCHEMA_VERSIONS

RESOURCE_TYPE = "ManagedInstanceInventory"


def object_key(prefix: str, type_name: str, account_id: str, region: str, instance_id: str) -> str:
    """The S3 key of one instance's inventory of one type.

    :param prefix: the sync's S3 prefix ('' for none).
    :param type_name: ``AWS:Application``, ``AWS:InstanceInformation``...
    """
    parts = [prefix.strip("/")] if prefix and prefix.strip("/") else []
    parts += [type_name, f"accountid={account_id}", f"region={region}", f"resourcetype={RESOURCE_TYPE}",
              f"{instance_id}.json"]
    return "/".join(parts)


def sync_objects(world: Any, account_id: str, region: str, day: dt.date, prefix: str) -> Iterator[tuple[str, bytes]]:
    """(key, body) of every inventory object the account's and region's instances have on ``day``.

    :param world: the running world (its InventoryModel supplies the fleet).
    :param prefix: the sync's S3 prefix.
    """
    inventory = world.inventory
    for inst in inventory.instances(account_id, region):
        instance_id = inst["instance_id"]
        captured = inventory.capture_time(day, account_id, instance_id)
        for type_name, entries in ((INSTANCE_INFORMATION, [inventory.information(inst, account_id)]),
                                   (APPLICATION, [inventory.application(a) for a in inst["applications"]])):
            lines = [json.dumps({**entry, "resourceId": instance_id, "captureTime": captured,
                                 "schemaVersion": SCHEMA_VERSIONS[type_name]}, separators=(",", ":"))
                     for entry in entries]
            yield object_key(prefix, type_name, account_id, region, instance_id), ("\n".join(lines) + "\n").encode()
