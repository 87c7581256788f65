"""REST load harness: a real Accord server and a bare-hypercorn baseline, both as subprocesses,
driven by N concurrent httpx clients; reports requests/s and p50/p99 and the ratio to the
baseline measured in the same run (the machine is noisy; compare within a run).

Reusable pieces (imported by bench/messages_bench.py):

    server = start_accord_server(tmp_dir)          # subprocess, rate limit lifted
    baseline = start_bare_baseline(body_bytes)     # subprocess serving fixed JSON
    result = trio.run(run_load, url, path, headers, concurrency, duration_s)

Scenario here (issue #3): the member list of a space with 1,000 members, pages of 100 following
the cursor, 10 concurrent readers. Run: `.venv/bin/python bench/rest_bench.py [--duration 10]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class ServerProcess:
    """A server running in a child process; `url` is its base URL."""

    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclasses.dataclass
class LoadResult:
    requests: int
    errors: int
    duration_s: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99)

    def line(self, label: str) -> str:
        return (
            f"{label:<28} {self.rps:9.1f} req/s   p50 {self.p50_ms:7.2f} ms   p99 "
            f"{self.p99_ms:7.2f} ms   ({self.requests} requests, {self.errors} errors)"
        )


def _wait_for_url(process: subprocess.Popen[bytes], pattern: str, timeout_s: float = 30.0) -> str:
    """Read the child's stderr until a line matches `pattern`; return the first group."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    regex = re.compile(pattern)
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode(errors="replace")
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        match = regex.search(line)
        if match:
            return match.group(1)
    process.kill()
    raise RuntimeError("server did not start:\n" + "".join(seen[-20:]))


def _drain_stderr(process: subprocess.Popen[bytes]) -> None:
    """Keep reading the child's stderr so it never blocks on a full pipe."""
    import threading

    def pump() -> None:
        assert process.stderr is not None
        for _ in process.stderr:
            pass

    threading.Thread(target=pump, daemon=True).start()


def start_accord_server(data_dir: Path, **env: str) -> ServerProcess:
    """`python -m accord serve` on 127.0.0.1:0 with its database in `data_dir`, the rate limit
    lifted (ACCORD_RATE_LIMIT) and test mode on; returns once it listens."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    child_env.update(
        {
            "PORT": "0",
            "ACCORD_BIND": "127.0.0.1",
            "DATABASE_URL": f"sqlite:{data_dir}/accord.db",
            "ACCORD_STORAGE_DIR": str(data_dir / "files"),
            "ACCORD_LOG": "accord=info,hypercorn=warning",
            "ACCORD_RATE_LIMIT": "1000000/s",
            "ACCORD_TEST_MODE": "true",
            **env,
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "accord", "serve"],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = _wait_for_url(process, r"listening on (http://[\d.]+:\d+)")
    _drain_stderr(process)
    return ServerProcess(process, url)


_BASELINE_CHILD = """
import sys, trio
from functools import partial
from hypercorn.config import Config
from hypercorn.trio import serve

body = open(sys.argv[1], "rb").read()
headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})

async def main():
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.keep_alive_timeout = 75
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config))
        print("listening on " + binds[0], file=sys.stderr, flush=True)

trio.run(main)
"""


def start_bare_baseline(body: bytes) -> ServerProcess:
    """A bare hypercorn (trio worker) ASGI app answering every request with `body` as JSON:
    the ceiling for any route that returns the same bytes."""
    with tempfile.NamedTemporaryFile(
        prefix="accord-baseline-", suffix=".json", delete=False
    ) as handle:
        handle.write(body)
    process = subprocess.Popen(
        [sys.executable, "-c", _BASELINE_CHILD, handle.name],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = _wait_for_url(process, r"listening on (http://[\d.]+:\d+)")
    finally:
        os.unlink(handle.name)  # the child has read it once it listens (or it failed)
    _drain_stderr(process)
    return ServerProcess(process, url)


NextPath = Callable[[str, Any], str]


def follow_cursor(start: str) -> NextPath:
    """Paging: the next path follows `cursor.after`, and restarts at `start` after the end."""

    def next_path(path: str, body: Any) -> str:
        cursor = body.get("cursor") if isinstance(body, dict) else None
        if cursor and cursor.get("has_more"):
            separator = "&" if "?" in start else "?"
            return f"{start}{separator}after={cursor['after']}"
        return start

    return next_path


async def run_load(
    url: str,
    path: str,
    headers: dict[str, str],
    concurrency: int,
    duration_s: float,
    *,
    next_path: NextPath | None = None,
    warmup_s: float = 1.0,
) -> LoadResult:
    """`concurrency` clients issue GET requests back to back for `duration_s` (after a warm-up)
    and record each latency. `next_path(path, body)` chooses each client's next path."""
    latencies: list[float] = []
    counters = {"requests": 0, "errors": 0}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:
        measuring = False
        stop_at = 0.0

        async def worker() -> None:
            current = path
            while True:
                started = time.perf_counter()
                if measuring and started >= stop_at:
                    return
                response = await http.get(current)
                elapsed_ms = (time.perf_counter() - started) * 1000
                body = response.json() if next_path is not None else None
                if measuring:
                    counters["requests"] += 1
                    latencies.append(elapsed_ms)
                    if response.status_code != 200:
                        counters["errors"] += 1
                if next_path is not None:
                    current = next_path(current, body)

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
            await trio.sleep(warmup_s)
            latencies.clear()
            measuring = True
            begin = time.perf_counter()
            stop_at = begin + duration_s
        elapsed = time.perf_counter() - begin
    return LoadResult(counters["requests"], counters["errors"], elapsed, latencies)


# -- the member-list scenario ----------------------------------------------------------------


def seed_members(db_path: Path, space_id: int, count: int) -> None:
    """Insert `count` users and make them members of the space (a bench may write rows: the
    API would spend ~35 ms of Argon2 per registration)."""
    conn = sqlite3.connect(db_path, timeout=30)
    base = (int(time.time() * 1000) - 1_704_067_200_000) << 22
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    users = [(base + 4096 * (i + 1), f"bench{i}", f"Bench {i}", now, now) for i in range(count)]
    with conn:
        conn.executemany(
            "INSERT INTO users (id, username, display_name, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            users,
        )
        conn.executemany(
            "INSERT INTO members (space_id, user_id, joined_at) VALUES (?, ?, ?)",
            [(space_id, user[0], now) for user in users],
        )
        # Give every other member a role so role loading is exercised.
        role = conn.execute(
            "SELECT id FROM roles WHERE space_id = ? AND name = 'Moderator'", (space_id,)
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO member_roles (space_id, user_id, role_id) VALUES (?, ?, ?)",
            [(space_id, user[0], role) for user in users[::2]],
        )
    conn.close()


def member_list_scenario(duration_s: float, concurrency: int, members: int, page: int) -> None:
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        data_dir = Path(tmp)
        with start_accord_server(data_dir) as server:
            http = httpx.Client(base_url=server.url, timeout=30)
            http.post("/api/v1/auth/register", json={"username": "root", "password": "benchpass1"})
            r = http.post(
                "/api/v1/auth/register", json={"username": "owner", "password": "benchpass1"}
            )
            token = r.json()["data"]["token"]
            headers = {"Authorization": f"Bearer {token}"}
            space = http.post("/api/v1/spaces", json={"name": "Bench"}, headers=headers).json()[
                "data"
            ]
            seed_members(data_dir / "accord.db", int(space["id"]), members - 1)
            path = f"/api/v1/spaces/{space['id']}/members?limit={page}"
            first = http.get(path, headers=headers)
            assert first.status_code == 200, first.text
            assert len(first.json()["data"]) == page
            body = first.content
            http.close()
            accord = trio.run(
                lambda: run_load(
                    server.url,
                    path,
                    headers,
                    concurrency,
                    duration_s,
                    next_path=follow_cursor(path),
                )
            )
        with start_bare_baseline(body) as baseline:
            bare = trio.run(lambda: run_load(baseline.url, path, {}, concurrency, duration_s))
    print(
        f"member list: {members} members, pages of {page}, {concurrency} concurrent readers, "
        f"{duration_s:.0f} s each, page body {len(body)} bytes"
    )
    print(accord.line("accord GET members"))
    print(bare.line("bare hypercorn, same JSON"))
    print(f"ratio accord/bare: {accord.rps / bare.rps:.2f} of the baseline's requests/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--page", type=int, default=100)
    args = parser.parse_args()
    member_list_scenario(args.duration, args.concurrency, args.members, args.page)


if __name__ == "__main__":
    main()
