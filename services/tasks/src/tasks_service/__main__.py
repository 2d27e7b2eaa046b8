"""`python -m tasks_service`: serve the tasks service."""

from __future__ import annotations

from taskmesh_common.server import serve

from tasks_service.api.app import create_app
from tasks_service.config import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
