"""DescribeConfigurationAggregatorSourcesStatus: the state of each source (account x region) of an aggregator.

Default profile: every source SUCCEEDED. Realistic profile (resources/realistic.json, ``aggregator_sources``): the
first active members show one each of FAILED and OUTDATED, others fail or lag at small rates, and the aggregator
(AllAwsRegions) also covers a region where no member records, whose sources are FAILED. ``LastUpdateStatus`` takes
the values of the botocore config model's AggregatedSourceStatusType (SUCCEEDED, FAILED, OUTDATED). One row per
account and region with SourceType ACCOUNT, for organization aggregators too: an assumption (what AWS lists for an
organization aggregator was not confirmed from its documentation).

The aggregate compliance APIs follow the statuses (:func:`source_day`): a FAILED source contributes nothing, an
OUTDATED one the data of its last update (two days before the sandbox date).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import det
from ..paging import checked_limit, page
from .exceptions import ValidationException

STATUSES = ("SUCCEEDED", "FAILED", "OUTDATED")
OUTDATED_LAG = dt.timedelta(days=2)


def source_statuses(world: Any, accounts: list[str], regions: list[str], date: dt.date) -> list[dict[str, Any]]:
    """Every source's AggregatedSourceStatus on ``date`` (sorted by account, region).

    :param accounts: the aggregator's accounts (management account first).
    :param regions: the aggregator's regions.
    """
    settings = world.settings
    seed = settings.seed
    midnight = dt.datetime.combine(date, dt.time(0, 0), tzinfo=dt.UTC)
    spec: dict[str, Any] = {}
    covered = list(regions)
    forced: dict[str, str] = {}
    if settings.realistic:
        from .models import realistic

        spec = realistic()["aggregator_sources"]
        if spec["config_off_region"] not in covered:
            covered.append(spec["config_off_region"])
        members = [a for a in accounts if a != settings.management_account_id]
        forced = dict(zip(members[:2], ("FAILED", "OUTDATED"), strict=False))
    out = []
    for account in sorted(accounts):
        for region in covered:
            status, error = "SUCCEEDED", None
            if spec and region == spec["config_off_region"]:
                status, error = "FAILED", spec["config_off_error"]
            elif spec and forced.get(account) and region == regions[-1]:
                status = forced[account]
            elif spec:
                roll = det.unit(seed, "agg-source", account, region, date.isoformat())
                if roll < spec["failed_rate"]:
                    status = "FAILED"
                elif roll < spec["failed_rate"] + spec["outdated_rate"]:
                    status = "OUTDATED"
            if status == "FAILED" and error is None:
                error = spec["failed_error"]
            # A successful source was collected in the last hours; an outdated one two days ago.
            lag = OUTDATED_LAG if status == "OUTDATED" else dt.timedelta(
                minutes=det.integer(5, 600, seed, "agg-time", account, region))
            row: dict[str, Any] = {"SourceId": account, "SourceType": "ACCOUNT", "AwsRegion": region,
                                   "LastUpdateStatus": status, "LastUpdateTime": midnight - lag}
            if error:
                row["LastErrorCode"], row["LastErrorMessage"] = error["code"], error["message"]
            out.append(row)
    return out


def source_day(world: Any, accounts: list[str], regions: list[str], date: dt.date) -> dict[tuple[str, str], Any]:
    """{(account, region): the day whose data the aggregator holds for that source, None for a FAILED source}."""
    out: dict[tuple[str, str], Any] = {}
    for row in source_statuses(world, accounts, regions, date):
        status = row["LastUpdateStatus"]
        out[(row["SourceId"], row["AwsRegion"])] = (None if status == "FAILED" else
                                                    date - OUTDATED_LAG if status == "OUTDATED" else date)
    return out


def describe_sources_status(world: Any, accounts: list[str], regions: list[str], date: dt.date,
                            update_status: list[str] | None, limit: Any, next_token: str | None,
                            query: list[Any]) -> dict[str, Any]:
    """DescribeConfigurationAggregatorSourcesStatus over the aggregator's scope.

    :param update_status: keep only these LastUpdateStatus values.
    """
    for value in update_status or []:
        if value not in STATUSES:
            raise ValidationException(f"Value '[{value}]' at 'updateStatus' failed to satisfy constraint: Member "
                                      f"must satisfy enum value set: [{', '.join(STATUSES)}]")
    size = checked_limit(limit, 100, 100)
    rows = [r for r in source_statuses(world, accounts, regions, date)
            if not update_status or r["LastUpdateStatus"] in update_status]
    items, token = page(rows, next_token, size, [*query, update_status])
    return {"AggregatedSourceStatusList": items, **({"NextToken": token} if token else {})}
