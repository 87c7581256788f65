"""Command line: `accord` (serve; main mode by default, ACCORD_MODE=sfu for a voice node),
`accord migrate`, `accord admin grant|revoke <username>`.

Configuration errors print one line naming the variable and exit with code 2 (D22).
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
from collections.abc import Sequence
from functools import partial

import trio

from accord.config import ConfigError, Settings, load_settings
from accord.logs import configure_logging
from accord.runtime import tune_memory

VERSION = "0.1.0"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="accord", description="Accord chat and voice server")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the server (the default)")
    sub.add_parser("migrate", help="apply database migrations and exit")
    admin = sub.add_parser("admin", help="grant or revoke instance admin")
    admin.add_argument("action", choices=["grant", "revoke"])
    admin.add_argument("username")
    files = sub.add_parser("files", help="stored-file maintenance")
    files_sub = files.add_subparsers(dest="files_command", required=True)
    sweep = files_sub.add_parser(
        "sweep", help="remove stored files no row names any more (safe while serving)"
    )
    sweep.add_argument(
        "--min-age", type=float, default=3600.0, help="skip files newer than this (s)"
    )
    sweep.add_argument("--dry-run", action="store_true", help="report, remove nothing")
    _add_extra_commands(sub)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"accord: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_filter)
    tune_memory()
    command = args.command or "serve"
    if command == "migrate":
        return _migrate(settings)
    if command == "admin":
        return _admin(settings, args.action, args.username)
    if command == "files":
        return _files_sweep(settings, args.min_age, args.dry_run)
    if command == "serve":
        return _serve(settings)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.error(f"unknown command {command}")
    return int(handler(settings, args))


def _add_extra_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands that live with their subsystem (e.g. `accord voice-client`)."""
    try:
        from accord.client.cli import add_commands
    except ImportError:
        return
    add_commands(sub)


def _migrate(settings: Settings) -> int:
    from accord.storage.db import Database
    from accord.storage.migrate import MigrationError

    db = Database(settings.database_path, readers=0)
    try:
        db.open_sync()
    except (MigrationError, sqlite3.Error) as exc:
        print(f"accord: migration failed: {exc}", file=sys.stderr)
        return 1
    db.close_sync()
    print("database is up to date", file=sys.stderr)
    return 0


def _admin(settings: Settings, action: str, username: str) -> int:
    from accord.storage.db import Database, connect
    from accord.storage.migrate import MigrationError
    from accord.storage.users import set_admin

    db = Database(settings.database_path, readers=0)
    try:
        db.open_sync()
    except (MigrationError, sqlite3.Error) as exc:
        print(f"accord: {exc}", file=sys.stderr)
        return 1
    db.close_sync()
    conn = connect(db.path)
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            changed = set_admin(conn, username, action == "grant")
    finally:
        conn.close()
    if not changed:
        print(f"accord: no user named {username!r}", file=sys.stderr)
        return 1
    print(f"{'granted' if action == 'grant' else 'revoked'} admin for {username}", file=sys.stderr)
    return 0


def _files_sweep(settings: Settings, min_age_s: float, dry_run: bool) -> int:
    import time

    from accord.storage.db import Database, connect
    from accord.storage.file_refs import sweep
    from accord.storage.files import FileStore
    from accord.storage.migrate import MigrationError

    db = Database(settings.database_path, readers=0)
    try:
        db.open_sync()  # migrated, so every table the check reads exists
    except (MigrationError, sqlite3.Error) as exc:
        print(f"accord: {exc}", file=sys.stderr)
        return 1
    db.close_sync()
    conn = connect(db.path)
    try:
        report = sweep(
            conn,
            FileStore(settings.storage_dir),
            older_than=time.time() - max(0.0, min_age_s),
            dry_run=dry_run,
        )
    except (sqlite3.Error, OSError) as exc:
        print(f"accord: sweep failed: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    verb = "would remove" if dry_run else "removed"
    print(
        f"checked {report.checked} stored file(s): {verb} {report.removed} unreferenced "
        f"({report.removed_bytes} bytes) and {report.temporaries} stale temporary file(s)",
        file=sys.stderr,
    )
    return 0


def _banner(settings: Settings) -> None:
    lines = [f"accord {VERSION}", f"  mode      {settings.mode}", f"  port      {settings.port}"]
    if settings.mode == "main":
        voice = (
            f"livekit ({settings.livekit.url})" if settings.livekit is not None else "custom sfu"
        )
        lines += [f"  database  {settings.database_path}", f"  voice     {voice}"]
    if settings.test_mode:
        lines.append("  ! test mode enabled: POST /test/seed rotates credentials")
    print("\n".join(lines), file=sys.stderr, flush=True)


def _serve(settings: Settings) -> int:
    _banner(settings)
    if settings.mode == "sfu":
        from accord.sfu.media_plane import MediaPlane
        from accord.sfu.node import run_node

        try:
            media = MediaPlane(settings)
        except OSError as exc:
            print(f"accord: cannot open the media UDP port: {exc}", file=sys.stderr)
            return 1
        return int(trio.run(partial(run_node, settings, [media])))
    return trio.run(_serve_main, settings)


async def _serve_main(settings: Settings) -> int:
    from accord.app import run_server

    shutdown = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def wait_for_signal() -> None:
                async for _ in signals:
                    shutdown.set()
                    return

            nursery.start_soon(wait_for_signal)
            running = await nursery.start(partial(run_server, settings, shutdown=shutdown))
            print(f"→ listening on {running.url}\n", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
