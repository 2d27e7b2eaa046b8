"""Write each service's current OpenAPI document next to this file, on purpose.

    uv run python tests/contract/openapi/snapshot.py            # all services
    uv run python tests/contract/openapi/snapshot.py tasks      # one

The documents are built in-process from each service's `create_app(settings).openapi()`,
without starting it (no servers needed). tests/contract/test_gateway_routes.py fails on a
breaking change against these copies until they are regenerated here and reviewed.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

SERVICES = ("auth", "tasks", "analytics")
HERE = Path(__file__).resolve().parent


def snapshot_path(service: str) -> Path:
    return HERE / f"{service}.json"


def current_document(service: str) -> dict[str, Any]:
    # No exporter needed to build a document; keep tracing quiet.
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    app_module = importlib.import_module(f"{service}_service.api.app")
    config = importlib.import_module(f"{service}_service.config")
    document: dict[str, Any] = app_module.create_app(config.Settings()).openapi()
    return document


def checked_in_document(service: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(snapshot_path(service).read_text())
    return document


def write(service: str) -> Path:
    path = snapshot_path(service)
    text = json.dumps(current_document(service), indent=2, sort_keys=True) + "\n"
    path.write_text(text)
    return path


def main(argv: list[str]) -> int:
    chosen = argv or list(SERVICES)
    unknown = sorted(set(chosen) - set(SERVICES))
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
        return 2
    for service in chosen:
        print(f"wrote {write(service).relative_to(Path.cwd())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
