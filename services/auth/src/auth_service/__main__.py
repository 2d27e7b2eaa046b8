"""`python -m auth_service` serves the auth service; `python -m auth_service rotate-keys`
makes a new signing key sign from now on (the old one stays published until its tokens expire).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from taskmesh_common.mongo import create_mongo_client, ensure_indexes
from taskmesh_common.server import serve

from auth_service.adapters.key_wrapping import KeyWrapper
from auth_service.adapters.signing_keys import SIGNING_KEY_INDEXES, KeyStore
from auth_service.api.app import create_app
from auth_service.config import Settings
from auth_service.service_layer.clock import utcnow


async def rotate_keys(settings: Settings) -> str:
    mongo = create_mongo_client(settings.mongo_url, timeout_seconds=settings.mongo_timeout_seconds)
    try:
        db = mongo[settings.mongo_db]
        await ensure_indexes(db, {"signing_keys": SIGNING_KEY_INDEXES})
        keys = KeyStore(
            db["signing_keys"],
            reload_seconds=settings.signing_key_reload_seconds,
            retire_grace=timedelta(
                seconds=settings.access_token_ttl_seconds + settings.jwt_leeway_seconds
            ),
            wrapper=KeyWrapper(settings.key_encryption_key_bytes()),
        )
        return (await keys.rotate(utcnow())).kid
    finally:
        await mongo.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m auth_service")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "rotate-keys"])
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "rotate-keys":
        kid = asyncio.run(rotate_keys(settings))
        print(f"new signing key: {kid}")
        return
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
