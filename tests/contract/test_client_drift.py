"""The committed typed client matches the public OpenAPI document.

When an API change lands without `make client`, this fails and names the files that differ.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"

_spec = importlib.util.spec_from_file_location("taskmesh_client_generate", CLIENT / "generate.py")
assert _spec is not None and _spec.loader is not None
generator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generator)


def _tree(root: Path) -> dict[str, bytes]:
    files = [root / "openapi.json", *sorted((root / "src").rglob("*"))]
    return {
        str(f.relative_to(root)): f.read_bytes()
        for f in files
        if f.is_file() and "__pycache__" not in f.parts
    }


def test_the_committed_client_is_what_make_client_writes(tmp_path: Path) -> None:
    generator.generate(tmp_path)
    fresh, committed = _tree(tmp_path), _tree(CLIENT)
    differ = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not differ, f"the client is out of date; run `make client`. Differs: {differ[:10]}"
    assert "src/taskmesh_client/api/tasks/create_task.py" in committed
