"""Regenerate the typed Python client from the public OpenAPI document.

    uv run python clients/python/generate.py            # or: make client

The public document is the gateway's merge of the services' documents, built in-process
(no servers needed), as the gateway builds it at start-up. It is written to
clients/python/openapi.json, and openapi-python-client turns it into
clients/python/src/taskmesh_client. tests/contract/test_client_drift.py fails when the
committed client no longer matches what this script would write.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVICES = ("auth", "tasks", "analytics")
PACKAGE = "taskmesh_client"


def public_document() -> dict[str, Any]:
    """The document clients read at the gateway's /openapi.json."""
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    from gateway_service.domain.openapi import merge_openapi

    documents = {}
    for service in SERVICES:
        app_module = importlib.import_module(f"{service}_service.api.app")
        config = importlib.import_module(f"{service}_service.config")
        documents[service] = app_module.create_app(config.Settings()).openapi()
    return merge_openapi(documents, title="taskmesh", version="1.0.0")


def generate(into: Path) -> None:
    """Write openapi.json and src/taskmesh_client under `into`."""
    into.mkdir(parents=True, exist_ok=True)
    document = into / "openapi.json"
    document.write_text(json.dumps(public_document(), indent=2, sort_keys=True) + "\n")
    package = into / "src" / PACKAGE
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / PACKAGE
        generator = Path(sys.executable).parent / "openapi-python-client"
        subprocess.run(
            [
                str(generator),
                "generate",
                "--path",
                str(document),
                "--config",
                str(HERE / "config.yaml"),
                "--meta",
                "none",
                "--output-path",
                str(out),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        shutil.rmtree(package, ignore_errors=True)
        package.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(out, package)


if __name__ == "__main__":
    generate(HERE)
    print(f"wrote {HERE.name}/openapi.json and {HERE.name}/src/{PACKAGE}")
