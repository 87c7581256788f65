"""Message send and history benchmark (issue #4 figures), with a bare-hypercorn baseline.

    .venv/bin/python bench/messages_bench.py [--seconds 5]

Prepares a database directly (users, tokens, a space of 110 members and one of 1,000
members: registering 1,110 users through argon2 would take most of a minute), starts the
real server as a subprocess (`python -m accord serve`), and measures from this process:

- send, 1 sender: p50/p99 latency (target p50 <= 15 ms);
- send, 10 concurrent senders into the 110-member channel: requests/s (target >= 135);
- history `GET /messages?limit=50`, 10 concurrent readers: requests/s (target >= 330);
- server CPU per message sent (utime+stime of the server process over the messages sent),
  in the 110- and the 1,000-member channel (target <= 5 ms and not growing).

A trivial ASGI app under the same hypercorn trio worker is measured in the same run so the
figures can be read against the machine's state (STACK-NOTES: this box varies up to 3x).
Requests rotate over the members' tokens so the per-user rate limit (70/min) never trips.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accord.auth.tokens import hash_token  # noqa: E402
from accord.ids import SnowflakeGenerator  # noqa: E402
from accord.storage.migrate import apply_migrations  # noqa: E402
from accord.storage.spaces import add_member, create_space  # noqa: E402

BARE_APP = """
import orjson, trio
from hypercorn.config import Config
from hypercorn.trio import serve

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = orjson.dumps({"data": {"ok": True}})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})

config = Config()
config.bind = ["127.0.0.1:%d"]
config.accesslog = None
trio.run(serve, app, config)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(db_path: str, ids: SnowflakeGenerator) -> dict[str, Any]:
    """Two spaces (110 and 1,000 members), each member with a bearer token."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    apply_migrations(conn)
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    conn.execute("BEGIN")
    spaces: dict[str, Any] = {}
    counter = itertools.count()
    for label, size in (("small", 110), ("large", 1000)):
        tokens = []
        user_ids = []
        for _ in range(size):
            user_id = ids.next_id()
            name = f"bench{next(counter)}"
            conn.execute(
                "INSERT INTO users (id, username, display_name, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (user_id, name, name, now, now),
            )
            token = f"bench-token-{name}"
            conn.execute(
                "INSERT INTO user_tokens (token_hash, user_id, expires_at, created_at)"
                " VALUES (?, ?, '2099-01-01T00:00:00', ?)",
                (hash_token(token), user_id, now),
            )
            tokens.append(token)
            user_ids.append(user_id)
        space, channels = create_space(
            conn, new_id=ids.next_id, owner_id=user_ids[0], name=f"Bench {label}", now=now
        )
        for user_id in user_ids[1:]:
            add_member(conn, space.id, user_id, now)
        spaces[label] = {"channel": str(channels[0].id), "tokens": tokens}
    conn.execute("COMMIT")
    conn.close()
    return spaces


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        with trio.fail_after(30):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(url)
                    return
                await trio.sleep(0.1)


class Tokens:
    def __init__(self, tokens: list[str]) -> None:
        self._cycle = itertools.cycle(tokens)

    def next(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {next(self._cycle)}"}


async def load(
    base: str,
    workers: int,
    seconds: float,
    request: Any,
) -> tuple[int, list[float]]:
    """Run `request(client)` from `workers` tasks for `seconds`; (count, latencies in s)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await request(client)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
                latencies.append(time.perf_counter() - started)

        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(worker)
    return len(latencies), latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def bench_accord(port: int, pid: int, spaces: dict[str, Any], seconds: float) -> None:
    base = f"http://127.0.0.1:{port}"
    small = spaces["small"]
    tokens = Tokens(small["tokens"])
    seq = itertools.count()

    def sender(channel: str, pool: Tokens) -> Any:
        async def request(client: httpx.AsyncClient) -> httpx.Response:
            return await client.post(
                f"/api/v1/channels/{channel}/messages",
                json={"content": f"bench message {next(seq)}"},
                headers=pool.next(),
            )

        return request

    await load(base, 4, 1.0, sender(small["channel"], tokens))  # warm-up
    count, lat = await load(base, 1, seconds, sender(small["channel"], tokens))
    print(
        f"send, 1 sender:        {count / seconds:7.1f} req/s  p50 {pct(lat, 0.5):5.1f} ms"
        f"  p99 {pct(lat, 0.99):5.1f} ms"
    )
    for label in ("small", "large"):
        space = spaces[label]
        pool = Tokens(space["tokens"])
        await load(base, 4, 0.5, sender(space["channel"], pool))
        cpu_before = cpu_seconds(pid)
        count, lat = await load(base, 10, seconds, sender(space["channel"], pool))
        cpu = cpu_seconds(pid) - cpu_before
        members = len(space["tokens"])
        print(
            f"send, 10 senders, {members:4d} members: {count / seconds:7.1f} req/s"
            f"  p50 {pct(lat, 0.5):5.1f} ms  server CPU {cpu / count * 1000:5.2f} ms/message"
        )

    async def history(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(
            f"/api/v1/channels/{small['channel']}/messages",
            params={"limit": 50},
            headers=tokens.next(),
        )

    cpu_before = cpu_seconds(pid)
    count, lat = await load(base, 10, seconds, history)
    cpu = cpu_seconds(pid) - cpu_before
    print(
        f"history limit=50, 10 readers: {count / seconds:7.1f} req/s  p50 {pct(lat, 0.5):5.1f} ms"
        f"  server CPU {cpu / count * 1000:5.2f} ms/request"
    )


async def bench_bare(port: int, pid: int, seconds: float) -> None:
    base = f"http://127.0.0.1:{port}"

    async def request(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/")

    await load(base, 4, 0.5, request)
    cpu_before = cpu_seconds(pid)
    count, lat = await load(base, 10, seconds, request)
    cpu = cpu_seconds(pid) - cpu_before
    print(
        f"baseline bare hypercorn GET, 10 clients: {count / seconds:7.1f} req/s"
        f"  p50 {pct(lat, 0.5):5.1f} ms  server CPU {cpu / count * 1000:5.2f} ms/request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        db_path = f"{tmp}/bench.db"
        started = time.perf_counter()
        spaces = prepare(db_path, SnowflakeGenerator(worker_id=1))
        print(f"prepared 1,110 users in {time.perf_counter() - started:.1f} s")
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")},
            "PORT": str(port),
            "ACCORD_BIND": "127.0.0.1",
            "DATABASE_URL": f"sqlite:{db_path}",
            "ACCORD_STORAGE_DIR": f"{tmp}/files",
            "ACCORD_LOG": "accord=warning,hypercorn=warning",
        }
        bare_port = free_port()
        with process([sys.executable, "-c", BARE_APP % bare_port], env) as bare:
            trio.run(wait_ready, f"http://127.0.0.1:{bare_port}/")
            trio.run(bench_bare, bare_port, bare.pid, args.seconds)
        with process([sys.executable, "-m", "accord", "serve"], env) as server:
            trio.run(wait_ready, f"http://127.0.0.1:{port}/health")
            trio.run(bench_accord, port, server.pid, spaces, args.seconds)
        with process([sys.executable, "-c", BARE_APP % bare_port], env) as bare:
            trio.run(wait_ready, f"http://127.0.0.1:{bare_port}/")
            trio.run(bench_bare, bare_port, bare.pid, args.seconds)


if __name__ == "__main__":
    main()
