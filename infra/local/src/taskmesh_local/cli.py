"""``python3 -m taskmesh_local <command>``: the no-Docker stack from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from taskmesh_local import install, servers
from taskmesh_local.config import LocalError
from taskmesh_local.stack import PART_NAMES, Stack, print_status

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m taskmesh_local",
        description="Run taskmesh's backing servers and services as local processes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="install packages and build FerretDB and Jaeger")
    commands.add_parser("up", help="start everything not running, wait until ready")
    commands.add_parser("down", help="stop everything (data is kept)")
    for verb in ("start", "stop"):
        sub = commands.add_parser(verb, help=f"{verb} one part")
        sub.add_argument("name", choices=PART_NAMES)
    commands.add_parser("status", help="which parts run, on which ports")
    logs = commands.add_parser("logs", help="follow the logs (tail -F)")
    logs.add_argument("names", nargs="*", metavar="NAME", help=", ".join(PART_NAMES))
    test = commands.add_parser("test-servers", help="throwaway servers for a test run")
    test.add_argument("action", choices=("start", "stop"))
    test.add_argument("--dir", type=Path, required=True, help="their data, logs and env file")
    test.add_argument("--jaeger", action="store_true", help="start Jaeger as well")
    return parser


def _print_urls(stack: Stack) -> None:
    for name, url in stack.urls().items():
        print(f"  {name:<20} {url}")
    print(
        f"  admin login          {stack.service_env('auth')['TASKMESH_BOOTSTRAP_ADMIN_EMAIL']}"
        f" / {stack.admin_password()}  (in {stack.layout.base / 'admin-password'})"
    )


def _test_servers(action: str, folder: Path, *, jaeger: bool) -> None:
    if action == "stop":
        servers.stop_servers(folder)
        print(f"stopped the test servers in {folder}")
        return
    folder.mkdir(parents=True, exist_ok=True)
    # One set per folder: a second start replaces the first.
    servers.stop_servers(folder)
    started = servers.start_servers(folder, jaeger=jaeger)
    lines = [f"{key}={value}" for key, value in started.env().items()]
    (folder / "env").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    timings = ", ".join(f"{name} {secs}s" for name, secs in started.start_seconds.items())
    print(f"started in: {timings}; env file: {folder / 'env'}", file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "install":
        for name, path in install.install().items():
            print(f"{name}: {path}")
        return 0
    if args.command == "test-servers":
        _test_servers(args.action, args.dir, jaeger=args.jaeger)
        return 0
    stack = Stack.from_env()
    if args.command == "up":
        if not stack.up():
            print("taskmesh is already running; nothing to do")
        print("taskmesh is up:")
        _print_urls(stack)
    elif args.command == "down":
        stopped = stack.down()
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    elif args.command == "start":
        started = stack.start(args.name)
        print(f"{args.name} started" if started else f"{args.name} is already running")
    elif args.command == "stop":
        was = stack.stop(args.name)
        print(f"{args.name} stopped" if was else f"{args.name} was not running")
    elif args.command == "status":
        print_status(stack)
    elif args.command == "logs":
        return stack.logs(args.names)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except (LocalError, OSError) as exc:
        print(f"taskmesh-local: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
