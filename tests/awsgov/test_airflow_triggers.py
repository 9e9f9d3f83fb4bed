"""QueueReadyTrigger: before its queue exists it waits quietly (one warning, not one per poll), then watches it as the
provider's SQS trigger does; it serializes to a path the triggerer can import."""

from __future__ import annotations

import asyncio
import importlib
import json

import boto3
import pytest
from structlog.testing import capture_logs

from include.awsgov.airflow_triggers import QueueReadyTrigger, queue_name_and_owner
from tests.fixtures.notify_targets import TEST_REGION

TEST_ACCOUNT = "123456789012"
TEST_QUEUE = "governance-events-wake"


def test_queue_name_and_owner_from_url():
    assert queue_name_and_owner(f"https://sqs.{TEST_REGION}.amazonaws.com/{TEST_ACCOUNT}/{TEST_QUEUE}") == (
        TEST_QUEUE, TEST_ACCOUNT)
    assert queue_name_and_owner(f"http://localhost:5000/{TEST_QUEUE}") == (TEST_QUEUE, None)


def test_serialize_round_trips_through_its_import_path():
    trigger = QueueReadyTrigger(sqs_queue=f"http://x/{TEST_ACCOUNT}/{TEST_QUEUE}", aws_conn_id="aws_test",
                                absent_poll_seconds=120, waiter_delay=1)
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert path == "include.awsgov.airflow_triggers.QueueReadyTrigger"
    assert again.serialize() == (path, kwargs)
    assert kwargs["absent_poll_seconds"] == 120 and kwargs["waiter_delay"] == 1


def test_missing_queue_waits_quietly_with_one_warning_then_fires(moto_endpoint):
    sqs = boto3.client("sqs", region_name=TEST_REGION, endpoint_url=moto_endpoint)
    url = f"{moto_endpoint}/{TEST_ACCOUNT}/{TEST_QUEUE}"
    trigger = QueueReadyTrigger(sqs_queue=url, aws_conn_id="aws_test", absent_poll_seconds=0.05, waiter_delay=0,
                                wait_time_seconds=0)
    polls = 0
    original = trigger.queue_exists

    async def counted() -> bool:
        nonlocal polls
        polls += 1
        return await original()

    trigger.queue_exists = counted

    async def scenario():
        run = trigger.run().__aiter__()
        first = asyncio.ensure_future(run.__anext__())
        while polls < 20:  # twenty polls of a missing queue (one second at 2 s would be 40 s of the old logs)
            await asyncio.sleep(0.02)
        assert not first.done()
        created = sqs.create_queue(QueueName=TEST_QUEUE)["QueueUrl"]
        sqs.send_message(QueueUrl=created, MessageBody=json.dumps({"wake": "e-1"}))
        event = await asyncio.wait_for(first, timeout=30)
        await run.aclose()
        return event

    with capture_logs() as logs:  # the triggerer's loggers are structlog's
        event = asyncio.run(scenario())
    assert polls >= 20
    text = [str(entry["event"]) % tuple(entry.get("positional_args", ())) for entry in logs]
    warnings = [t for t, entry in zip(text, logs, strict=True) if entry["log_level"] == "warning"]
    assert len(warnings) == 1, warnings
    assert TEST_QUEUE in warnings[0] and "account_onboarding" in warnings[0]
    assert not [t for t, entry in zip(text, logs, strict=True) if entry["log_level"] in ("error", "exception")]
    bodies = [json.loads(m["Body"]) for m in event.payload["message_batch"]]
    assert bodies == [{"wake": "e-1"}]


def test_other_errors_are_raised_not_waited_on(monkeypatch):
    """An unreachable endpoint is not "no queue yet": the error reaches the triggerer (which shows and restarts it)."""
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_TEST", json.dumps(
        {"conn_type": "aws", "extra": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": TEST_REGION,
                                       "config_kwargs": {"retries": {"max_attempts": 1}}}}))
    trigger = QueueReadyTrigger(sqs_queue=f"http://127.0.0.1:{port}/{TEST_ACCOUNT}/{TEST_QUEUE}",
                                aws_conn_id="aws_test", absent_poll_seconds=0.05)
    with pytest.raises(Exception, match="Could not connect"):
        asyncio.run(asyncio.wait_for(trigger.wait_for_queue(), timeout=60))
