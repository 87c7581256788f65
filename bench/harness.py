"""The shared benchmark harness: real servers in subprocesses, a light load generator in others.

Every HTTP scenario script in `bench/` (`http_baseline.py`, `rest_bench.py`,
`messages_bench.py`) is built from these pieces:

- `start_accord(data_dir)` runs `python -m accord` on a free loopback port, its SQLite file in
  `data_dir`, the rate limit lifted, test mode on; `start_seeded_accord(sizes)` first writes
  spaces of those member counts into the database (`seed_spaces`), each member with a token.
- `start_bare(body)` runs a bare hypercorn (trio worker) ASGI app answering `/health` with `ok`
  and every other request with `body`: the stack's floor for a route returning the same bytes.
- `run_load(url, Load(...), duration_s=...)` drives keep-alive HTTP/1.1 connections from
  worker processes (raw sockets, minimal parsing, so the client costs the machine little) and
  returns rate, latencies, statuses and, with `cpu_pid`, the server's CPU time during the
  measured window. A `Load` gives the method, path, body, a list of header sets used round-robin
  (one per user/token) and whether to follow the `cursor.after` of each page. `run_loads` runs
  several loads in the same window (e.g. logins while a probe polls `/health`).
- `cpu_seconds(pid)` / `rss_kib(pid)` read a process's CPU time and resident memory from /proc.
- `bench_parser`, `timing`, `measure` and `compare` give every script the same options,
  the same way to measure and the same printed lines.

Every run is bounded in time and stops by itself: a worker gives up `GRACE_S` after its window.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
GRACE_S = 15.0  # how long after its window a load worker may still wait for an answer
SPAWN_S = 0.5  # time given to the worker processes to start before the warm-up begins


# -- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        return rss_kib(self.pid) / 1024


@contextmanager
def _launch(args: list[str], *, env: Mapping[str, str], cwd: Path, log: Path) -> Iterator[Server]:
    """Start `args`, wait for `GET /health`, yield; SIGTERM (then SIGKILL) on the way out."""
    port = int(env["PORT"])
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            args, env=dict(env), cwd=cwd, stdout=subprocess.DEVNULL, stderr=log_file
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url, proc, log)
        yield Server(url, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{url} did not come up (exit code {proc.poll()}):\n{tail}")


def _child_env(**env: str) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    full.update(env)
    return full


@contextmanager
def start_accord(data_dir: Path | None = None, **env: str) -> Iterator[Server]:
    """`python -m accord` (main mode) with its database at `data_dir/accord.db`."""
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        data = data_dir or Path(tmp)
        defaults = {
            "PORT": str(free_port()),
            "ACCORD_BIND": "127.0.0.1",
            "DATABASE_URL": f"sqlite:{data}/accord.db",
            "ACCORD_STORAGE_DIR": f"{data}/files",
            "ACCORD_LOG": "accord=warning,hypercorn=warning",
            "ACCORD_TEST_MODE": "true",
            "ACCORD_RATE_LIMIT": "1000000/s",  # the limiter still runs, it never refuses
        }
        full = _child_env(**{**defaults, **env})
        args = [sys.executable, "-m", "accord"]
        with _launch(args, env=full, cwd=Path(tmp), log=Path(tmp) / "server.log") as server:
            yield server


@contextmanager
def start_bare(body: bytes, content_type: str = "application/json") -> Iterator[Server]:
    """The bare hypercorn baseline: `/health` answers `ok`, every other request `body`."""
    with tempfile.TemporaryDirectory(prefix="accord-bare-") as tmp:
        body_file = Path(tmp) / "body"
        body_file.write_bytes(body)
        port = free_port()
        args = [sys.executable, __file__, "--bare", str(port), str(body_file), content_type]
        env = _child_env(PORT=str(port))
        with _launch(args, env=env, cwd=Path(tmp), log=Path(tmp) / "bare.log") as server:
            yield server


def _serve_bare(port: int, body: bytes, content_type: str) -> None:
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    def head(payload: bytes, ctype: str) -> list[tuple[bytes, bytes]]:
        return [(b"content-type", ctype.encode()), (b"content-length", str(len(payload)).encode())]

    health = (b"ok", head(b"ok", "text/plain; charset=utf-8"))
    other = (body, head(body, content_type))

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        while (await receive()).get("more_body"):  # read the request body, as an app would
            pass
        payload, headers = health if scope["path"] == "/health" else other
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None

    async def main() -> None:
        shutdown = trio.Event()
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:

                async def wait() -> None:
                    async for _ in signals:
                        shutdown.set()
                        return

                nursery.start_soon(wait)
                await serve(app, config, shutdown_trigger=shutdown.wait)
                nursery.cancel_scope.cancel()

    trio.run(main)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- seeding ----------------------------------------------------------------------------------


@dataclasses.dataclass
class SeededSpace:
    space_id: str
    channel_id: str  # the space's #general
    tokens: list[str]  # one bearer token per member; the owner's first

    def auth(self, first: int = 0, count: int | None = None) -> list[dict[str, str]]:
        """Authorization headers of members `first`.. (round-robin sets for a `Load`)."""
        chosen = self.tokens[first : None if count is None else first + count]
        return [{"Authorization": f"Bearer {token}"} for token in chosen]


def seed_spaces(db_path: Path, sizes: Sequence[int], *, roles_every: int = 0) -> list[SeededSpace]:
    """Before the server starts: migrate `db_path` and write one space per entry of `sizes` with
    that many members, each a user with a bearer token (registering through the API would
    spend ~35 ms of Argon2 per user). With `roles_every=n`, every n-th member gets Moderator,
    so role loading is exercised."""
    from accord.auth.tokens import hash_token
    from accord.ids import SnowflakeGenerator
    from accord.storage.migrate import apply_migrations
    from accord.storage.spaces import add_member, assign_role, create_space

    ids = SnowflakeGenerator(worker_id=1)  # the server uses worker 0: no collision
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    apply_migrations(conn)
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    names = (f"bench{n}" for n in itertools.count())
    spaces = []
    conn.execute("BEGIN")
    for size in sizes:
        users = [(ids.next_id(), next(names)) for _ in range(size)]
        conn.executemany(
            "INSERT INTO users (id, username, display_name, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(user_id, name, name, now, now) for user_id, name in users],
        )
        conn.executemany(
            "INSERT INTO user_tokens (token_hash, user_id, expires_at, created_at)"
            " VALUES (?, ?, '2099-01-01T00:00:00', ?)",
            [(hash_token(f"bench-token-{name}"), user_id, now) for user_id, name in users],
        )
        space, channels = create_space(
            conn, new_id=ids.next_id, owner_id=users[0][0], name=f"Bench {size}", now=now
        )
        moderator = conn.execute(
            "SELECT id FROM roles WHERE space_id = ? AND name = 'Moderator'", (space.id,)
        ).fetchone()[0]
        for index, (user_id, _) in enumerate(users[1:], start=1):
            add_member(conn, space.id, user_id, now)
            if roles_every and index % roles_every == 0:
                assign_role(conn, space.id, user_id, moderator)
        tokens = [f"bench-token-{name}" for _, name in users]
        spaces.append(SeededSpace(str(space.id), str(channels[0].id), tokens))
    conn.execute("COMMIT")
    conn.close()
    return spaces


@contextmanager
def start_seeded_accord(
    sizes: Sequence[int], *, roles_every: int = 0
) -> Iterator[tuple[Server, list[SeededSpace]]]:
    """`seed_spaces` into a fresh database, then `start_accord` on it."""
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        spaces = seed_spaces(Path(tmp) / "accord.db", sizes, roles_every=roles_every)
        with start_accord(Path(tmp)) as server:
            yield server, spaces


# -- load generator ---------------------------------------------------------------------------


def build_request(
    method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclasses.dataclass(frozen=True)
class Load:
    """What `connections` keep-alive connections send, back to back.

    Request i of a connection uses `headers[(connection + i) % len(headers)]`: several tokens
    spread the requests over several users. With `follow_cursor`, each connection's next path
    adds `after=<cursor.after>` of the page it just read, and starts over after the last page.
    """

    method: str = "GET"
    path: str = "/"
    headers: Sequence[Mapping[str, str]] = ({},)
    body: bytes = b""
    follow_cursor: bool = False
    connections: int = 32
    processes: int = 2  # client processes sharing the connections

    def render(self, i: int, after: str | None = None) -> bytes:
        path = self.path
        if after is not None:
            path += ("&" if "?" in path else "?") + f"after={after}"
        headers = dict(self.headers[i % len(self.headers)])
        if self.body:
            headers.setdefault("Content-Type", "application/json")
        return build_request(self.method, path, headers, self.body)


@dataclasses.dataclass
class LoadResult:
    requests: int
    errors: int  # requests without an answer: connection refused, or closed or failed under them
    duration_s: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    server_cpu_s: float | None = None  # the server's CPU time in the window, when asked

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    @property
    def not_ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def cpu_ms_per_request(self) -> float:
        if self.server_cpu_s is None or not self.requests:
            return float("nan")
        return 1000 * self.server_cpu_s / self.requests

    def line(self, label: str) -> str:
        text = (
            f"  {label:<40} {self.rate:8.1f} req/s  p50 {self.percentile(50):7.2f} ms"
            f"  p99 {self.percentile(99):7.2f} ms"
        )
        if self.server_cpu_s is not None:
            text += f"  server CPU {self.cpu_ms_per_request:5.2f} ms/req"
        text += f"  errors {self.errors}"
        if self.not_ok:
            text += f"  non-2xx {self.not_ok} {self.statuses}"
        return text


class _UnansweredError(Exception):
    """The connection ended before the whole response arrived."""


_HAS_MORE = re.compile(rb'"has_more"\s*:\s*true')
_AFTER = re.compile(rb'"after"\s*:\s*"(\d+)"')


def _next_after(body: bytes) -> str | None:
    """`cursor.after` of a page that has more, else None (start over)."""
    tail = body[body.rfind(b'"cursor"') :]
    if not tail.startswith(b'"cursor"') or not _HAS_MORE.search(tail):
        return None
    match = _AFTER.search(tail)
    return match.group(1).decode() if match else None


def _worker(
    index: int,
    host: str,
    port: int,
    load: Load,
    connections: range,
    start_at: float,
    end_at: float,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    import trio

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    fixed = None if load.follow_cursor else [load.render(i) for i in range(len(load.headers))]

    class Reader:
        def __init__(self, stream: trio.SocketStream) -> None:
            self.stream = stream
            self.buffer = b""

        async def fill(self) -> None:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise _UnansweredError
            self.buffer += chunk

        async def take(self, size: int) -> bytes:
            while len(self.buffer) < size:
                await self.fill()
            data, self.buffer = self.buffer[:size], self.buffer[size:]
            return data

        async def line(self) -> bytes:
            while b"\r\n" not in self.buffer:
                await self.fill()
            data, _, self.buffer = self.buffer.partition(b"\r\n")
            return data

        async def response(self) -> tuple[int, bool, bytes]:
            """(status, server closes after it, body)"""
            while b"\r\n\r\n" not in self.buffer:
                await self.fill()
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            length, chunked, closing = 0, False, False
            for field in head.split(b"\r\n")[1:]:
                name, _, value = field.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    closing = b"close" in value.lower()
            if not chunked:
                return int(head[9:12]), closing, await self.take(length)
            parts = []
            while size := int((await self.line()).split(b";")[0], 16):
                parts.append(await self.take(size))
                await self.line()
            while await self.line():  # trailers, then the empty line
                pass
            return int(head[9:12]), closing, b"".join(parts)

    async def connection(i: int) -> None:
        # Servers close keep-alive connections now and then (hypercorn after 1,000 requests,
        # with `Connection: close`): reconnect as a real client would. Only a request that
        # gets no answer is an error.
        nonlocal errors
        after: str | None = None
        while time.time() < end_at:
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError:
                errors += start_at <= time.time() < end_at
                await trio.sleep(0.05)
                continue
            async with stream:
                reader = Reader(stream)
                while time.time() < end_at:
                    request = fixed[i % len(fixed)] if fixed else load.render(i, after)
                    i += 1
                    begin = time.perf_counter()
                    try:
                        await stream.send_all(request)
                        status, closing, body = await reader.response()
                    except (_UnansweredError, trio.BrokenResourceError, OSError):
                        errors += start_at <= time.time() < end_at
                        break
                    elapsed_ms = (time.perf_counter() - begin) * 1000
                    if start_at <= time.time() < end_at:
                        latencies.append(elapsed_ms)
                        statuses[status] = statuses.get(status, 0) + 1
                    if load.follow_cursor:
                        after = _next_after(body)
                    if closing:
                        break

    async def main() -> None:
        with trio.move_on_after(end_at - time.time() + GRACE_S):
            async with trio.open_nursery() as nursery:
                for i in connections:
                    nursery.start_soon(connection, i)

    try:
        trio.run(main)
    except BaseException as exc:  # report, never hang the parent
        errors += 1
        print(f"load worker error: {exc!r}", file=sys.stderr)
    queue.put((index, latencies, statuses, errors))


def _split(total: int, parts: int) -> list[range]:
    """`range(total)` cut into at most `parts` consecutive, non-empty, near-equal pieces."""
    sizes = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    starts = list(itertools.accumulate([0, *sizes]))
    return [range(a, b) for a, b in itertools.pairwise(starts) if b > a]


def run_loads(
    url: str,
    loads: Sequence[Load],
    *,
    duration_s: float,
    warmup_s: float = 1.0,
    cpu_pid: int | None = None,
) -> list[LoadResult]:
    """Run every load in the same window: `warmup_s` unmeasured, then `duration_s` measured.
    With `cpu_pid`, each result carries that process's CPU time over the measured window."""
    host, port = url.removeprefix("http://").split(":")
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    start_at = time.time() + SPAWN_S + warmup_s
    end_at = start_at + duration_s
    workers = [
        multiprocessing.Process(
            target=_worker,
            args=(index, host, int(port), load, part, start_at, end_at, queue),
            daemon=True,
        )
        for index, load in enumerate(loads)
        for part in _split(load.connections, load.processes)
    ]
    for worker in workers:
        worker.start()
    cpu = None
    if cpu_pid is not None:
        time.sleep(max(0.0, start_at - time.time()))
        before = cpu_seconds(cpu_pid)
        time.sleep(max(0.0, end_at - time.time()))
        cpu = cpu_seconds(cpu_pid) - before
    results = [LoadResult(0, 0, duration_s, [], {}, cpu) for _ in loads]
    for _ in workers:
        index, latencies, statuses, errors = queue.get(timeout=end_at - time.time() + 2 * GRACE_S)
        result = results[index]
        result.latencies_ms += latencies
        result.requests += len(latencies)
        result.errors += errors
        for status, count in statuses.items():
            result.statuses[status] = result.statuses.get(status, 0) + count
    for worker in workers:
        worker.join(timeout=10)
    return results


def run_load(
    url: str,
    load: Load,
    *,
    duration_s: float,
    warmup_s: float = 1.0,
    cpu_pid: int | None = None,
) -> LoadResult:
    return run_loads(url, [load], duration_s=duration_s, warmup_s=warmup_s, cpu_pid=cpu_pid)[0]


# -- the scripts' common options and output -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Timing:
    duration_s: float
    warmup_s: float


def bench_parser(description: str, duration_s: float) -> argparse.ArgumentParser:
    """The options every script has: `--duration` (seconds measured per run) and `--quick`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=float, default=duration_s, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="1 s runs after a short warm-up")
    return parser


def timing(args: argparse.Namespace) -> Timing:
    if args.quick:
        return Timing(min(args.duration, 1.0), 0.3)
    return Timing(args.duration, 1.0)


def measure(server: Server, load: Load, t: Timing) -> LoadResult:
    """One load against `server`, its CPU time taken over the measured window."""
    return run_load(
        server.url, load, duration_s=t.duration_s, warmup_s=t.warmup_s, cpu_pid=server.pid
    )


def compare(
    title: str,
    accord: LoadResult,
    bare: LoadResult,
    *,
    target: str = "",
    ratio_of: str = "requests/s",
) -> None:
    """Print a scenario: the baseline line, Accord's line and the ratio of their rates."""
    print(title)
    print(bare.line("bare hypercorn, same response bytes"))
    print(accord.line("accord"))
    ratio = accord.rate / bare.rate if bare.rate else float("nan")
    suffix = f"  ({target})" if target else ""
    print(f"  ratio accord/bare: {ratio:.2f} of the baseline's {ratio_of}{suffix}")


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--bare":
    _serve_bare(int(sys.argv[2]), Path(sys.argv[3]).read_bytes(), sys.argv[4])
