"""Queue names and arguments, partitioning and the generated documents: pure, no I/O."""

from __future__ import annotations

from taskmesh_common.events import ConsumerTopology
from taskmesh_common.events.asyncapi import asyncapi_document, dumps, event_schemas
from taskmesh_common.events.dlq import dead_letter_queue_name
from taskmesh_common.events.schemas import EVENT_DATA_MODELS


def test_consumer_queues_are_named_after_the_main_queue():
    topology = ConsumerTopology("p_analytics.events", (500, 2000, 10000), 20)
    assert topology.dead_letter_queue == "p_analytics.events.dlq"
    assert topology.retry_queue(1) == "p_analytics.events.retry.1"


def test_attempts_past_the_last_delay_keep_the_longest_delay():
    topology = ConsumerTopology("q", (500, 2000), 20)
    assert [topology.retry_queue_for_attempt(n) for n in (1, 2, 3, 4)] == [
        "q.retry.1",
        "q.retry.2",
        "q.retry.2",
        "q.retry.2",
    ]


def test_main_queue_is_quorum_with_explicit_delivery_limit_and_dead_letter_queue():
    args = ConsumerTopology("q", (500,), 7).main_arguments()
    assert args == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
        "x-dead-letter-exchange": "q.requeue",
        "x-dead-letter-routing-key": "q.dlq",
    }


def test_every_queue_dead_letters_through_the_consumers_own_requeue_exchange():
    """Never the default exchange: write on it reaches any queue by name."""
    topology = ConsumerTopology("p.analytics.events", (500, 2000), 20)
    assert topology.requeue_exchange == "p.analytics.events.requeue"
    arguments = topology.arguments()
    assert list(arguments) == [
        "p.analytics.events.dlq",
        "p.analytics.events.retry.1",
        "p.analytics.events.retry.2",
        "p.analytics.events",
    ]
    assert arguments["p.analytics.events.retry.2"] == {
        "x-message-ttl": 2000,
        "x-dead-letter-exchange": "p.analytics.events.requeue",
        "x-dead-letter-routing-key": "p.analytics.events",
    }
    dead_letter_exchanges = {a.get("x-dead-letter-exchange") for a in arguments.values()}
    assert dead_letter_exchanges == {None, "p.analytics.events.requeue"}


def test_dead_letter_queue_name_accepts_either_name():
    assert dead_letter_queue_name("q") == "q.dlq"
    assert dead_letter_queue_name("q.dlq") == "q.dlq"


def test_generated_documents_are_reproducible():
    assert dumps(asyncapi_document()) == dumps(asyncapi_document())
    assert dumps(event_schemas()) == dumps(event_schemas())


def test_asyncapi_describes_every_event_type_on_the_topic_exchange():
    document = asyncapi_document()
    assert set(document["channels"]) == set(EVENT_DATA_MODELS)
    binding = document["channels"]["task.completed"]["bindings"]["amqp"]
    assert binding["exchange"] == {
        "name": "taskmesh.events",
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": "/",
    }


def test_event_schema_pins_type_and_data_version():
    schema = event_schemas()["task.deleted"]
    assert schema["properties"]["type"]["const"] == "task.deleted"
    assert schema["properties"]["data_version"]["const"] == 1
    assert schema["properties"]["data"]["additionalProperties"] is False
