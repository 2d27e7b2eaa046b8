"""Publisher and Consumer against the real broker and database."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from collections.abc import Callable
from typing import Any

import aio_pika
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from prometheus_client import REGISTRY
from taskmesh_common.events import Consumer, Envelope, EventPublisher
from taskmesh_common.events.dlq import list_dead_letters, replay_dead_letters
from taskmesh_common.events.envelope import ENVELOPE_FIELDS
from taskmesh_common.events.topology import DEAD_LETTER_ERROR_HEADER, DEAD_LETTER_REASON_HEADER

pytestmark = pytest.mark.integration


def consumed(queue: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "events_consumed_total", {"service": "test", "queue": queue, "outcome": outcome}
    )
    return value or 0.0


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def make_consumer(broker, db, exchange, queue_name, handler, **kwargs: Any) -> Consumer:
    kwargs.setdefault("routing_keys", ["task.*"])
    # These tests publish as the broker user of the fixture's connection, not as tasks.
    kwargs.setdefault("publisher_users", {"tasks": broker.user, "auth": broker.user})
    return Consumer(
        broker,
        exchange=exchange,
        queue=queue_name,
        handler=handler,
        db=db,
        service="test",
        **kwargs,
    )


async def test_published_event_arrives_persistent_with_traceparent_and_one_trace(
    broker, db, exchange, queue_name, spy, spans, make_task_created
):
    provider, exporter = spans
    with provider.get_tracer("test").start_as_current_span("POST /api/v1/tasks") as request:
        entry = make_task_created()
    received: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        received.append(envelope)

    consumer = make_consumer(broker, db, exchange, queue_name, handler, tracer_provider=provider)
    publisher = EventPublisher(broker, exchange, tracer_provider=provider)
    await consumer.start()
    await publisher.start()
    try:
        await publisher.publish(entry)
        [message] = await spy.collect(1)
        await eventually(lambda: len(received) == 1)
    finally:
        await consumer.stop()
        await publisher.close()

    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert message.message_id == entry["id"]
    assert message.routing_key == "task.created"
    body = json.loads(message.body)
    assert set(body) == {"id", "type", "source", "time", "subject", "data_version", "data"}
    assert received[0].id == entry["id"]
    assert received[0].data == entry["data"]

    trace_id = request.get_span_context().trace_id
    traceparent = str(message.headers["traceparent"])
    assert traceparent.split("-")[1] == f"{trace_id:032x}"
    by_name = {span.name: span for span in exporter.get_finished_spans()}
    publish, process = by_name["task.created publish"], by_name["task.created process"]
    assert publish.context.trace_id == process.context.trace_id == trace_id
    assert (
        publish.parent is not None and publish.parent.span_id == request.get_span_context().span_id
    )
    assert process.parent is not None and process.parent.span_id == publish.context.span_id


async def test_a_handler_has_client_instrumentation_only_inside_a_sampled_trace(
    broker, db, exchange, queue_name, spans, make_task_created
):
    """Nine events in ten at a 10 % sampling rate make no span: PyMongo's and Redis's
    instrumentation, which check `is_instrumentation_enabled()`, stay out of their handling."""
    provider, _ = spans

    def entry_in_a_trace(sampled: bool) -> dict[str, Any]:
        flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        caller = SpanContext(random.getrandbits(128), random.getrandbits(64), True, flags)
        with trace.use_span(NonRecordingSpan(caller)):
            return make_task_created()

    sampled, unsampled = entry_in_a_trace(True), entry_in_a_trace(False)
    instrumented: dict[str, bool] = {}

    async def handler(envelope: Envelope) -> None:
        instrumented[envelope.id] = is_instrumentation_enabled()

    consumer = make_consumer(broker, db, exchange, queue_name, handler, tracer_provider=provider)
    publisher = EventPublisher(broker, exchange, tracer_provider=provider)
    await consumer.start()
    await publisher.start()
    try:
        await publisher.publish_many([sampled, unsampled])
        await eventually(lambda: len(instrumented) == 2)
    finally:
        await consumer.stop()
        await publisher.close()

    assert instrumented == {sampled["id"]: True, unsampled["id"]: False}


async def test_event_delivered_twice_is_applied_once(
    broker, db, exchange, queue_name, make_task_created
):
    applied: list[str] = []

    async def handler(envelope: Envelope) -> None:
        applied.append(envelope.id)

    consumer = make_consumer(broker, db, exchange, queue_name, handler)
    publisher = EventPublisher(broker, exchange)
    await consumer.start()
    await publisher.start()
    entry = make_task_created()
    duplicates_before = consumed(queue_name, "duplicate")
    try:
        await publisher.publish_many([entry])
        await eventually(lambda: len(applied) == 1)
        await publisher.publish(entry)
        await eventually(lambda: consumed(queue_name, "duplicate") == duplicates_before + 1)
    finally:
        await consumer.stop()
        await publisher.close()
    assert applied == [entry["id"]]
    assert await db["processed_events"].count_documents({"_id": entry["id"]}) == 1


async def test_without_dedupe_a_second_delivery_reaches_the_idempotent_handler_again(
    broker, db, exchange, queue_name, make_task_created
):
    """For a handler idempotent by itself: no lookup before, no record after."""
    applied: list[str] = []

    async def handler(envelope: Envelope) -> None:
        applied.append(envelope.id)

    consumer = make_consumer(broker, db, exchange, queue_name, handler, dedupe=False)
    publisher = EventPublisher(broker, exchange)
    await consumer.start()
    await publisher.start()
    entry = make_task_created()
    try:
        await publisher.publish_many([entry, entry])
        await eventually(lambda: len(applied) == 2)
    finally:
        await consumer.stop()
        await publisher.close()
    assert applied == [entry["id"], entry["id"]]
    assert await db["processed_events"].count_documents({"_id": entry["id"]}) == 0


async def test_failing_handler_is_retried_with_back_off_then_applied_once(
    broker, db, exchange, queue_name, make_task_created
):
    loop = asyncio.get_running_loop()
    attempts: list[float] = []
    applied: list[str] = []

    async def flaky(envelope: Envelope) -> None:
        attempts.append(loop.time())
        if len(attempts) <= 2:
            raise RuntimeError("database hiccup")
        applied.append(envelope.id)

    consumer = make_consumer(
        broker, db, exchange, queue_name, flaky, retry_delays_ms=(300, 600), max_attempts=5
    )
    publisher = EventPublisher(broker, exchange)
    await consumer.start()
    await publisher.start()
    entry = make_task_created()
    try:
        await publisher.publish(entry)
        await eventually(lambda: len(applied) == 1)
        await asyncio.sleep(0.5)  # nothing else may arrive
    finally:
        await consumer.stop()
        await publisher.close()
    assert applied == [entry["id"]]
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.25
    assert attempts[2] - attempts[1] >= 0.55
    assert consumed(queue_name, "retried") == 2


async def test_poison_message_goes_to_dead_letter_queue_with_its_reason(
    broker, db, exchange, queue_name, publish_raw, spy
):
    applied: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        applied.append(envelope)

    consumer = make_consumer(broker, db, exchange, queue_name, handler)
    await consumer.start()
    try:
        await publish_raw("task.created", b'{"not": "an envelope"}', message_id="poison-1")
        await eventually(lambda: consumed(queue_name, "dead_lettered") == 1)
        connection = await broker.wait()
        [letter] = await list_dead_letters(connection, queue_name)
        # Listing leaves it there.
        assert len(await list_dead_letters(connection, queue_name)) == 1
    finally:
        await consumer.stop()
    assert applied == []
    assert letter.message_id == "poison-1"
    assert letter.reason == "invalid-event"
    assert letter.routing_key == "task.created"
    assert "ValidationError" in (letter.error or "")
    assert letter.headers[DEAD_LETTER_REASON_HEADER] == "invalid-event"


async def test_event_from_a_service_not_owning_its_type_is_dead_lettered_and_counted(
    broker, db, exchange, queue_name, publish_raw, spy, make_task_created
):
    applied: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        applied.append(envelope)

    forged = {**make_task_created(), "source": "taskmesh/auth"}
    body = json.dumps({k: forged[k] for k in ENVELOPE_FIELDS}).encode()
    consumer = make_consumer(broker, db, exchange, queue_name, handler)
    await consumer.start()
    try:
        await publish_raw("task.created", body, message_id=forged["id"])
        await eventually(lambda: consumed(queue_name, "dead_lettered") == 1)
        [letter] = await list_dead_letters(await broker.wait(), queue_name)
    finally:
        await consumer.stop()
    assert applied == []
    assert letter.message_id == forged["id"] and letter.reason == "foreign-source"
    assert "taskmesh/tasks" in (letter.error or "")
    counted = REGISTRY.get_sample_value(
        "events_foreign_source_total",
        {"service": "test", "queue": queue_name, "type": "task.created"},
    )
    assert counted == 1


async def test_event_published_by_a_user_other_than_its_owners_is_dead_lettered_and_counted(
    broker, db, exchange, queue_name, publish_raw, spy, make_task_created
):
    """The source is right, but the broker user is not tasks': published as the fixture's
    user (the broker checks ``user_id``), and once without any ``user_id``."""
    applied: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        applied.append(envelope)

    consumer = make_consumer(broker, db, exchange, queue_name, handler, publisher_users={})
    publisher = EventPublisher(broker, exchange)
    await consumer.start()
    await publisher.start()
    signed, unsigned = make_task_created(), make_task_created()
    try:
        await publisher.publish(signed)
        body = json.dumps({k: unsigned[k] for k in ENVELOPE_FIELDS}).encode()
        await publish_raw("task.created", body, message_id=unsigned["id"])
        await eventually(lambda: consumed(queue_name, "dead_lettered") == 2)
        letters = await list_dead_letters(await broker.wait(), queue_name)
        [published, _] = await spy.collect(2)
    finally:
        await consumer.stop()
        await publisher.close()
    assert published.user_id == broker.user
    assert applied == []
    assert {letter.message_id: letter.reason for letter in letters} == {
        signed["id"]: "foreign-publisher",
        unsigned["id"]: "foreign-publisher",
    }
    errors = {letter.message_id: letter.error or "" for letter in letters}
    assert f"broker user {broker.user!r}" in errors[signed["id"]]
    assert "no user_id" in errors[unsigned["id"]]
    counted = REGISTRY.get_sample_value(
        "events_foreign_publisher_total",
        {"service": "test", "queue": queue_name, "type": "task.created"},
    )
    assert counted == 2


async def test_dead_lettered_event_is_applied_after_replay(
    broker, db, exchange, queue_name, make_task_created
):
    broken = True
    applied: list[str] = []

    async def handler(envelope: Envelope) -> None:
        if broken:
            raise ValueError("bug in handler")
        applied.append(envelope.id)

    consumer = make_consumer(
        broker, db, exchange, queue_name, handler, retry_delays_ms=(50,), max_attempts=3
    )
    publisher = EventPublisher(broker, exchange)
    await consumer.start()
    await publisher.start()
    entry = make_task_created()
    try:
        await publisher.publish(entry)
        await eventually(lambda: consumed(queue_name, "dead_lettered") == 1)
        connection = await broker.wait()
        [letter] = await list_dead_letters(connection, queue_name)
        assert letter.reason == "max-attempts"
        assert letter.attempts == "3"
        assert "bug in handler" in letter.headers[DEAD_LETTER_ERROR_HEADER]

        broken = False  # the fix is deployed
        assert await replay_dead_letters(connection, queue_name, exchange) == 1
        await eventually(lambda: applied == [entry["id"]])
        assert await list_dead_letters(connection, queue_name) == []
    finally:
        await consumer.stop()
        await publisher.close()


async def run_cli(backing_servers, exchange: str, *args: str) -> tuple[str, str]:
    env = {
        **os.environ,
        "TASKMESH_AMQP_URL": backing_servers.amqp_url,
        "TASKMESH_EVENTS_EXCHANGE": exchange,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "taskmesh_common.events",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode(), stderr.decode()


async def test_dlq_command_lists_then_replays_a_dead_letter_to_the_exchange(
    backing_servers, broker, db, exchange, queue_name, publish_raw, spy
):
    async def handler(envelope: Envelope) -> None:
        raise AssertionError("a poison message never reaches the handler")

    consumer = make_consumer(broker, db, exchange, queue_name, handler)
    await consumer.start()
    try:
        await publish_raw("task.created", b"not json", message_id="poison-2")
        await eventually(lambda: consumed(queue_name, "dead_lettered") == 1)
    finally:
        await consumer.stop()  # so the replayed copy stays where the spy can see it

    listed, _ = await run_cli(backing_servers, exchange, "dlq", "list", "--queue", queue_name)
    [line] = listed.splitlines()
    letter = json.loads(line)
    assert letter["message_id"] == "poison-2"
    assert letter["reason"] == "invalid-event"

    _, summary = await run_cli(backing_servers, exchange, "dlq", "replay", "--queue", queue_name)
    assert "replayed 1" in summary
    original, replayed = await spy.collect(2)
    assert replayed.message_id == original.message_id == "poison-2"
    assert replayed.routing_key == "task.created"
    assert replayed.body == b"not json"
    assert DEAD_LETTER_REASON_HEADER not in (replayed.headers or {})
    connection = await broker.wait()
    assert await list_dead_letters(connection, queue_name) == []
