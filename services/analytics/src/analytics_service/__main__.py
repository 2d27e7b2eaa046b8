"""`python -m analytics_service`: serve the analytics service."""

from __future__ import annotations

from taskmesh_common.server import serve

from analytics_service.api.app import create_app
from analytics_service.config import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
