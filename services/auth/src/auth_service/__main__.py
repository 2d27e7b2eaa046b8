"""`python -m auth_service`: serve the auth service."""

from __future__ import annotations

from taskmesh_common.server import serve

from auth_service.api.app import create_app
from auth_service.config import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
