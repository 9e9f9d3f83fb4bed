"""Triggers of the package's AssetWatchers: Airflow-only glue, run by the triggerer (never imported by include/awsgov's
subpackages).

:class:`QueueReadyTrigger` is the Amazon provider's SQS trigger (``SqsSensorTrigger``, what the common-messaging
``MessageQueueTrigger`` resolves to for scheme ``sqs``) preceded by a quiet wait for the queue to exist. The events
queue and its wake queue are created by the central stack, which the first ``account_onboarding`` run deploys; before
that, the provider's trigger fails on every receive with ``AWS.SimpleQueueService.NonExistentQueue`` and the
triggerer restarts it, which logged the same traceback every 2 s (314 times in 11 minutes, issue #20) and said
nothing useful. This trigger instead asks ``GetQueueUrl`` every ``absent_poll_seconds``, logs **one** warning naming
the queue and what to do, and hands over to the provider's trigger once the queue exists.

The triggerer imports the class by the path :meth:`serialize` returns (``include.awsgov.airflow_triggers``): the
repository root is on ``PYTHONPATH`` in every Airflow process (README "Layout"). It is a ``BaseEventTrigger``
(through ``SqsSensorTrigger``), which Airflow 3 requires of a trigger used in an ``AssetWatcher``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger
from airflow.triggers.base import TriggerEvent

from include.awsgov.events.ingest import MISSING_QUEUE_CODES


def queue_name_and_owner(queue_url: str) -> tuple[str, str | None]:
    """The queue name and owner account of an SQS queue URL (``https://sqs.<region>.amazonaws.com/<account>/<name>``).

    :param queue_url: the queue's URL.
    """
    parts = [p for p in urlparse(queue_url).path.split("/") if p]
    if not parts:
        raise ValueError(f"not an SQS queue URL: {queue_url!r}")
    owner = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() and len(parts[-2]) == 12 else None
    return parts[-1], owner


class QueueReadyTrigger(SqsSensorTrigger):
    """The provider's SQS trigger, after waiting quietly for its queue to exist.

    :param sqs_queue: the queue URL (as for ``SqsSensorTrigger``).
    :param absent_poll_seconds: seconds between two ``GetQueueUrl`` calls while the queue does not exist.
    :param hint: what the one warning tells the operator to do.
    :param kwargs: the other ``SqsSensorTrigger`` arguments.
    """

    def __init__(self, sqs_queue: str, absent_poll_seconds: float = 300,
                 hint: str = "run the account_onboarding DAG first (it deploys the central stack)",
                 **kwargs: Any) -> None:
        super().__init__(sqs_queue=sqs_queue, **kwargs)
        self.absent_poll_seconds = float(absent_poll_seconds)
        self.hint = hint

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {**kwargs, "absent_poll_seconds": self.absent_poll_seconds, "hint": self.hint})

    async def queue_exists(self) -> bool:
        """Whether the queue exists now (``GetQueueUrl``); any error other than "no such queue" is raised."""
        from botocore.exceptions import ClientError  # loaded with the provider's hook already

        name, owner = queue_name_and_owner(self.sqs_queue)
        params = {"QueueName": name, **({"QueueOwnerAWSAccountId": owner} if owner else {})}
        async with await self.hook.get_async_conn() as client:
            try:
                await client.get_queue_url(**params)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in MISSING_QUEUE_CODES:
                    return False
                raise
        return True

    async def wait_for_queue(self) -> None:
        """Return once the queue exists, having logged one warning (not one per poll) if it did not at first."""
        warned = False
        while not await self.queue_exists():
            if not warned:
                self.log.warning(
                    "SQS queue %s does not exist yet: %s. This watcher checks again every %g s and starts "
                    "watching when it appears; until then nothing is logged.",
                    self.sqs_queue, self.hint, self.absent_poll_seconds)
                warned = True
            await asyncio.sleep(self.absent_poll_seconds)
        if warned:
            self.log.info("SQS queue %s exists now: watching it", self.sqs_queue)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await self.wait_for_queue()
        async for event in super().run():
            yield event
