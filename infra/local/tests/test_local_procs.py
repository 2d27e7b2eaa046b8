"""Pid files, staleness and killing whole process trees."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from taskmesh_local import procs
from taskmesh_local.paths import Layout


def test_pid_file_round_trip_records_the_start_time(tmp_path: Path) -> None:
    path = tmp_path / "run" / "x.pid"
    procs.write_pid_file(path, os.getpid())
    record = procs.read_pid_file(path)
    assert record is not None
    assert record.pid == os.getpid()
    assert record.start_time == procs.proc_start_time(os.getpid())


def test_garbage_pid_files_read_as_none(tmp_path: Path) -> None:
    assert procs.parse_pid_file("") is None
    assert procs.parse_pid_file("abc") is None
    assert procs.parse_pid_file("-3") is None
    assert procs.parse_pid_file("42") == procs.PidRecord(42, None)
    assert procs.read_pid_file(tmp_path / "missing.pid") is None


def test_a_live_process_with_the_marker_is_ours() -> None:
    me = procs.PidRecord(os.getpid(), procs.proc_start_time(os.getpid()))
    marker = Path(sys.executable).name.split(".")[0]  # "python3"
    assert procs.owned_pid(me, marker) == os.getpid()


def test_a_reused_pid_is_not_ours() -> None:
    start = procs.proc_start_time(os.getpid())
    assert start is not None
    # Same pid, another start time: the pid now belongs to a different process.
    assert procs.owned_pid(procs.PidRecord(os.getpid(), start + 1), "python") is None
    # Same pid and start time, another program's command line.
    assert procs.owned_pid(procs.PidRecord(os.getpid(), start), "redis-server") is None


def test_a_dead_pid_is_not_ours() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert procs.owned_pid(procs.PidRecord(child.pid, None), "true") is None
    assert procs.owned_pid(None, "anything") is None


def test_kill_all_takes_children_that_left_the_session(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    tag = layout.tag("tree")
    # A leader whose child starts a session of its own, like Erlang's erl_child_setup.
    script = (
        "import subprocess, time;"
        "subprocess.Popen(['sleep', '300'], start_new_session=True);"
        "time.sleep(300)"
    )
    leader = procs.spawn(
        [sys.executable, "-c", script], env=dict(os.environ), log=layout.log("tree"), tag=tag
    )
    deadline = time.monotonic() + 10
    while len(procs.tagged_pids(tag)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(procs.tagged_pids(tag)) == 2

    procs.kill_all(leader.pid, tag, timeout=5)

    assert leader.wait(timeout=5) is not None
    assert procs.tagged_pids(tag) == []


def test_kill_all_escalates_to_sigkill(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    tag = layout.tag("stubborn")
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    leader = procs.spawn(
        [sys.executable, "-c", script], env=dict(os.environ), log=layout.log("s"), tag=tag
    )
    time.sleep(0.3)
    began = time.monotonic()
    procs.kill_all(leader.pid, tag, timeout=0.5)
    assert leader.wait(timeout=5) == -9
    assert time.monotonic() - began < 8
