"""Reading py-spy's raw profiles: samples summed by the innermost frame's package."""

from __future__ import annotations

from pathlib import Path

from bench.profiles import by_package, frame_package, summarize

RAW = (
    "<module> (gateway_service/__main__.py:17);serve (taskmesh_common/server.py:63);"
    "send (uvicorn/protocols/http/httptools_impl.py:463) 30\n"
    "<module> (gateway_service/__main__.py:17);_request (aiohttp/client.py:558) 50\n"
    "<module> (gateway_service/__main__.py:17);_handle (gateway_service/api/edge.py:96) 15\n"
    "Thread._bootstrap (threading.py:1002);wait (threading.py:331) 5\n"
    "garbage without a count\n"
)


def test_frames_are_named_by_their_top_level_package() -> None:
    assert frame_package("send (uvicorn/protocols/http/httptools_impl.py:463)") == "uvicorn"
    assert frame_package("Condition.wait (threading.py:331)") == "threading"
    assert frame_package("_run_code (<frozen runpy>:88)") == "<frozen runpy>"
    assert frame_package("no location at all") == "(other)"


def test_samples_go_to_the_innermost_frame_largest_share_first() -> None:
    samples, shares = by_package(RAW)
    assert samples == 100
    assert shares == {"aiohttp": 0.5, "uvicorn": 0.3, "gateway_service": 0.15, "threading": 0.05}
    assert list(shares) == ["aiohttp", "uvicorn", "gateway_service", "threading"]


def test_an_empty_profile_has_no_shares() -> None:
    assert by_package("") == (0, {})


def test_a_folder_is_summarized_per_file_keeping_the_largest(tmp_path: Path) -> None:
    (tmp_path / "get_one-tracing-off-gateway.txt").write_text(RAW)
    (tmp_path / "notes.md").write_text("not a profile")
    summary = summarize(tmp_path, top=2)
    assert summary == {
        "get_one-tracing-off-gateway": {
            "samples": 100,
            "by_package": {"aiohttp": 0.5, "uvicorn": 0.3},
        }
    }
