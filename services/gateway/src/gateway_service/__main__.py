"""`python -m gateway_service`: serve the gateway."""

from __future__ import annotations

from taskmesh_common.server import serve

from gateway_service.api.app import create_app
from gateway_service.config import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
