"""The console's build is keyed by its own sources, and a cached build is never redone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from taskmesh_local import npm_build, web_console
from taskmesh_local.config import LocalError


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "console"
    real = web_console.source_dir()
    for name in ("package.json", "package-lock.json", "build.mjs", "index.html"):
        copy.mkdir(exist_ok=True)
        shutil.copy(real / name, copy / name)
    shutil.copytree(real / "src", copy / "src")
    monkeypatch.setattr(web_console, "source_dir", lambda: copy)
    monkeypatch.setenv("TASKMESH_CACHE_DIR", str(tmp_path / "cache"))
    return copy


def test_the_stamp_follows_the_sources_and_nothing_else(source: Path) -> None:
    first = web_console.tools_path()
    # Installed packages and earlier builds are not sources.
    (source / "node_modules" / "x").mkdir(parents=True)
    (source / "node_modules" / "x" / "index.js").write_text("1")
    (source / "dist").mkdir()
    (source / "dist" / "index.html").write_text("old")
    assert web_console.tools_path() == first
    (source / "src" / "styles.css").write_text("body { color: red; }")
    assert web_console.tools_path() != first
    assert web_console.built_console() is None


def test_a_build_lands_whole_and_is_reused(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "thing" / "stamp"
    calls = []

    def build(partial: Path) -> None:
        calls.append(partial)
        (partial / "site").mkdir(parents=True)
        (partial / "site" / "index.html").write_text("ok")

    assert npm_build.cached_build(target, "site/index.html", build) == target
    assert npm_build.cached_build(target, "site/index.html", build) == target
    assert len(calls) == 1
    assert not target.with_name("stamp.partial").exists()


def test_a_build_that_writes_nothing_fails_and_leaves_no_cache(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "thing" / "stamp"
    with pytest.raises(LocalError, match=r"wrote no index\.html"):
        npm_build.cached_build(target, "index.html", lambda partial: partial.mkdir(parents=True))
    assert not target.exists()
