"""The Database: SQLite in WAL mode behind dedicated threads, reached from trio.

One writer thread owns the only writing connection and runs each job inside one transaction
(`BEGIN IMMEDIATE` ... `COMMIT`), so writes are serialized and atomic. A small pool of reader
threads, each with its own connection, serves reads. Jobs travel over `queue.SimpleQueue`s and
results come back through `TrioToken.run_sync_soon`, so no call uses trio's default thread
limiter. A write is never abandoned when its caller is cancelled: the caller waits (shielded)
until the job has committed or rolled back.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from accord.storage.migrate import apply_migrations

log = logging.getLogger("accord.storage")

T = TypeVar("T")
_STOP = object()


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open one connection with the pragmas every connection needs (D2)."""
    if path == ":memory:":
        raise ValueError("use a shared-cache URI for in-memory databases")
    uri = path.startswith("file:")
    conn = sqlite3.connect(
        path, uri=uri, isolation_level=None, check_same_thread=False, timeout=10.0
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA synchronous = NORMAL")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


class _Worker(threading.Thread):
    """A thread that owns one connection and runs jobs from a shared queue."""

    def __init__(self, name: str, path: str, jobs: queue.SimpleQueue[Any], *, writer: bool) -> None:
        super().__init__(name=name, daemon=True)
        self._path = path
        self._jobs = jobs
        self._writer = writer
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn = connect(self._path, readonly=not self._writer)
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        try:
            while True:
                job = self._jobs.get()
                if job is _STOP:
                    return
                job(conn)
        finally:
            conn.close()


class Database:
    """Owns the SQLite connections; `read`/`write` run sync functions on them from trio."""

    def __init__(self, path: str, *, readers: int = 2) -> None:
        if path == ":memory:":
            # One shared in-memory database for every connection of this process.
            path = f"file:accord-mem-{id(self)}?mode=memory&cache=shared"
            self._keepalive: sqlite3.Connection | None = sqlite3.connect(
                path, uri=True, check_same_thread=False
            )
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._keepalive = None
        self.path = path
        self._reader_count = readers
        self._write_jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._read_jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[_Worker] = []
        self._token: trio.lowlevel.TrioToken | None = None
        self._closed = True

    # -- lifecycle -------------------------------------------------------------------------

    def open_sync(self) -> None:
        """Migrate and start the threads. Blocking: call from a worker thread or before trio."""
        setup = connect(self.path)
        try:
            setup.execute("PRAGMA journal_mode = WAL")
            apply_migrations(setup)
        finally:
            setup.close()
        self._threads = [_Worker("accord-db-writer", self.path, self._write_jobs, writer=True)]
        self._threads += [
            _Worker(f"accord-db-reader-{i}", self.path, self._read_jobs, writer=False)
            for i in range(self._reader_count)
        ]
        for thread in self._threads:
            thread.start()
        for thread in self._threads:
            thread.ready.wait()
            if thread.error is not None:
                self.close_sync()
                raise thread.error
        self._closed = False

    async def open(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        await trio.to_thread.run_sync(self.open_sync, limiter=trio.CapacityLimiter(1))

    def close_sync(self) -> None:
        self._closed = True
        self._write_jobs.put(_STOP)
        for _ in range(self._reader_count):
            self._read_jobs.put(_STOP)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=10)
        self._threads = []
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None

    async def close(self) -> None:
        await trio.to_thread.run_sync(self.close_sync, limiter=trio.CapacityLimiter(1))

    # -- jobs --------------------------------------------------------------------------------

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in one transaction on the writer thread; never abandoned."""

        def transact(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        with trio.CancelScope(shield=True):
            result = await self._submit(self._write_jobs, transact)
        return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` on a reader connection (a consistent snapshot)."""

        def snapshot(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                conn.execute("COMMIT")

        return await self._submit(self._read_jobs, snapshot)

    async def _submit(
        self, jobs: queue.SimpleQueue[Any], fn: Callable[[sqlite3.Connection], T]
    ) -> T:
        if self._closed:
            raise RuntimeError("database is closed")
        token = self._token or trio.lowlevel.current_trio_token()
        done = trio.Event()
        outcome: list[Any] = []

        def job(conn: sqlite3.Connection) -> None:
            try:
                outcome.append((True, fn(conn)))
            except BaseException as exc:
                outcome.append((False, exc))
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        jobs.put(job)
        await done.wait()
        ok, value = outcome[0]
        if ok:
            return value  # type: ignore[no-any-return]
        raise value
