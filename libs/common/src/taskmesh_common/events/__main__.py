"""``python -m taskmesh_common.events``: dead-letter queues and the AsyncAPI document.

    dlq list   --queue Q [--limit N]          print dead letters as JSON lines (they stay)
    dlq replay --queue Q [--limit N] [--exchange E]
                                              re-publish them under their original routing key
    asyncapi [--schemas-dir DIR]              print the AsyncAPI document (and write schemas)

The broker comes from TASKMESH_AMQP_URL, the exchange from TASKMESH_EVENTS_EXCHANGE.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import aio_pika

from taskmesh_common.events.asyncapi import asyncapi_document, dumps, event_schemas
from taskmesh_common.events.dlq import list_dead_letters, replay_dead_letters
from taskmesh_common.settings import ServiceSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m taskmesh_common.events")
    commands = parser.add_subparsers(dest="command", required=True)
    dlq = commands.add_parser("dlq", help="inspect or replay a consumer's dead-letter queue")
    dlq_commands = dlq.add_subparsers(dest="action", required=True)
    for action in ("list", "replay"):
        sub = dlq_commands.add_parser(action)
        sub.add_argument("--queue", required=True, help="the consumer's queue (or its .dlq)")
        sub.add_argument("--limit", type=int, default=None)
        if action == "replay":
            sub.add_argument("--exchange", default=None, help="default: TASKMESH_EVENTS_EXCHANGE")
    api = commands.add_parser("asyncapi", help="print the AsyncAPI document")
    api.add_argument("--schemas-dir", type=Path, default=None)
    return parser


async def _dlq(args: argparse.Namespace) -> int:
    settings = ServiceSettings()
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    try:
        if args.action == "list":
            letters = await list_dead_letters(connection, args.queue, args.limit or 1000)
            for letter in letters:
                print(letter.to_json())
            print(f"{len(letters)} dead letter(s)", file=sys.stderr)
        else:
            exchange = args.exchange or settings.events_exchange
            count = await replay_dead_letters(connection, args.queue, exchange, args.limit)
            print(f"replayed {count} dead letter(s) to {exchange}", file=sys.stderr)
    finally:
        await connection.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "dlq":
        return asyncio.run(_dlq(args))
    if args.schemas_dir is not None:
        args.schemas_dir.mkdir(parents=True, exist_ok=True)
        for event_type, schema in event_schemas().items():
            (args.schemas_dir / f"{event_type}.json").write_text(dumps(schema))
    sys.stdout.write(dumps(asyncapi_document()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
