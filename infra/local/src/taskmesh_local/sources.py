"""Pinned third-party sources: from ``../shared/vendor/`` beside the checkout when it is there
(each archive checked by its sha256), else downloaded once from upstream into the cache (checked
by :func:`tree_hash`, a hash of the files an archive holds, which a tag's archive on the forge
and ``git archive`` of the same commit share although their bytes differ)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from taskmesh_local.config import LocalError
from taskmesh_local.paths import cache_dir, checkout_root
from taskmesh_local.steps import say

__all__ = ["Source", "archive", "tree_hash", "unpack", "vendor_dir"]


@dataclass(frozen=True)
class Source:
    folder: str  # where it is unpacked
    archive: str  # the file name in ../shared/vendor
    sha256: str  # of that archive
    tree: str  # of the files it holds (tree_hash), the same for upstream's tag archive
    url: str


def vendor_dir() -> Path:
    override = os.environ.get("TASKMESH_VENDOR_DIR")
    return Path(override) if override else checkout_root().parent / "shared" / "vendor"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_hash(archive: Path) -> str:
    """A hash of the files (and links) an archive holds, below its one top folder."""
    items = []
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if member.isfile():
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
            elif member.issym():
                data = member.linkname.encode()
            else:
                continue
            items.append((name, hashlib.sha256(data).digest()))
    digest = hashlib.sha256()
    for name, data_hash in sorted(items):
        digest.update(name.encode() + b"\0" + data_hash)
    return digest.hexdigest()


def archive(source: Source) -> Path:
    """The checked archive: from the vendor folder, else downloaded once into the cache."""
    vendored = vendor_dir() / source.archive
    if vendored.is_file():
        if _file_sha256(vendored) != source.sha256:
            raise LocalError(f"{vendored} does not match its pinned sha256")
        return vendored
    cached = cache_dir() / "sources" / source.archive
    if cached.is_file() and tree_hash(cached) == source.tree:
        return cached
    say(f"downloading {source.url}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(cached.name + ".part")
    try:
        with urllib.request.urlopen(source.url, timeout=60) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as exc:
        raise LocalError(
            f"{source.archive} is neither in {vendor_dir()} nor downloadable ({exc})"
        ) from exc
    if tree_hash(partial) != source.tree:
        partial.unlink()
        raise LocalError(f"{source.url} does not hold the pinned files")
    partial.replace(cached)
    return cached


def unpack(archive: Path, into: Path) -> None:
    """Extract ``archive`` without its top folder."""
    into.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if "/" not in member.name:
                continue
            member.name = member.name.split("/", 1)[1]
            tar.extract(member, into, filter="data")
