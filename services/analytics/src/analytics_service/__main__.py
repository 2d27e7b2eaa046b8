"""`python -m analytics_service [serve|rebuild]`: serve the API, or rebuild the projections."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict

from taskmesh_common.logging import configure_logging
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.server import serve

from analytics_service.api.app import create_app
from analytics_service.config import Settings
from analytics_service.service_layer.rebuild import rebuild_projections


async def _rebuild(settings: Settings) -> None:
    mongo = create_mongo_client(settings.mongo_url, timeout_seconds=settings.mongo_timeout_seconds)
    try:
        report = await rebuild_projections(mongo[settings.mongo_db])
    finally:
        await mongo.close()
    print(json.dumps(asdict(report)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analytics_service")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=("serve", "rebuild"),
        help="serve the API (default), or rebuild every projection from the stored events",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "rebuild":
        configure_logging(settings.service_name, settings.log_level)
        asyncio.run(_rebuild(settings))
    else:
        serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
