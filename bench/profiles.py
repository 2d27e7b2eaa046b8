"""py-spy profiles of running services, and where their samples went.

``record`` starts ``py-spy record`` (raw: one collapsed stack a line, ``frame;frame;... N``)
on some services for a while; ``by_package`` sums a profile's samples by the package of the
innermost frame (its own time: a frame's C calls, socket writes included, count for it), so
"aiohttp 16 %" means 16 % of the samples were in aiohttp's own code.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

__all__ = ["by_package", "frame_package", "record", "summarize", "wait"]

# "func (path/to/file.py:123)": the path is as py-spy shortens it (from the package down).
_FRAME = re.compile(r"\((?P<file>[^():]+):\d+\)$")
_OTHER = "(other)"


def record(
    pids: dict[str, int], *, seconds: float, folder: Path, label: str, idle: bool = False
) -> list[asyncio.Task[asyncio.subprocess.Process]]:
    """py-spy on each of ``pids`` (name -> pid) for ``seconds``, into
    ``folder/<label>-<name>.txt``; ``idle`` keeps samples of threads that wait (where a
    pipeline spends its time), otherwise only those on the CPU."""
    folder.mkdir(parents=True, exist_ok=True)
    flags = ["--idle"] if idle else []
    return [
        asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                "py-spy", "record", *flags, "--nonblocking", "-r", "200",
                "-d", str(max(1, round(seconds))), "-f", "raw",
                "-o", str(folder / f"{label}-{name}.txt"), "--pid", str(pid),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
        )
        for name, pid in pids.items()
    ]  # fmt: skip


async def wait(spies: list[asyncio.Task[asyncio.subprocess.Process]]) -> None:
    for spy in spies:
        proc = await spy
        await proc.wait()


def frame_package(frame: str) -> str:
    """``"send (uvicorn/protocols/http/httptools_impl.py:463)"`` -> ``"uvicorn"``; a module
    of the standard library's top level (``threading.py``) -> ``"threading"``."""
    match = _FRAME.search(frame.strip())
    if not match:
        return _OTHER
    first = match.group("file").split("/", 1)[0]
    return first.removesuffix(".py") or _OTHER


def by_package(text: str) -> tuple[int, dict[str, float]]:
    """(samples, package -> share of them) of a raw py-spy profile, largest first."""
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[frame_package(stack.rsplit(";", 1)[-1])] += int(count)
    total = sum(counts.values())
    if not total:
        return 0, {}
    return total, {name: round(n / total, 3) for name, n in counts.most_common()}


def summarize(folder: Path, top: int = 8) -> dict[str, dict[str, object]]:
    """Each profile in ``folder`` (by file stem): its samples and its ``top`` packages."""
    out: dict[str, dict[str, object]] = {}
    for path in sorted(folder.glob("*.txt")):
        samples, shares = by_package(path.read_text())
        out[path.stem] = {"samples": samples, "by_package": dict(list(shares.items())[:top])}
    return out
