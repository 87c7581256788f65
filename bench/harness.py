"""Benchmark harness: real servers in subprocesses, a light load generator in other processes.

- `start_accord(env)` runs `python -m accord` on a free loopback port with a temp database.
- `start_bare()` runs a bare hypercorn (trio worker) ASGI app answering `/health` and any other
  path with a fixed JSON body: the stack's floor, measured in the same run.
- `run_load(...)` drives keep-alive HTTP/1.1 connections from `processes` worker processes
  (raw sockets, minimal parsing, so the client costs little) and returns rate and latencies.
- `cpu_seconds(pid)` reads a process's user+system CPU time from /proc.

Every run is bounded in time and stops by itself.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BARE_JSON = (
    b'{"data":{"id":"384606952786755584","username":"ana","display_name":"ana","avatar":null,'
    b'"banner":null,"accent_color":null,"bio":null,"bot":false,"system":false,"is_admin":true,'
    b'"flags":0,"public_flags":0,"created_at":"2026-11-27T07:30:43","mfa_enabled":false}}'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@dataclasses.dataclass
class Proc:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def start_accord(**env: str) -> Iterator[Proc]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
        full.update(
            {
                "PORT": str(port),
                "ACCORD_BIND": "127.0.0.1",
                "DATABASE_URL": f"sqlite:{tmp}/accord.db",
                "ACCORD_STORAGE_DIR": f"{tmp}/files",
                "ACCORD_LOG": "accord=warning,hypercorn=warning",
                "ACCORD_TEST_MODE": "true",
                "ACCORD_RATE_LIMIT": "1000000/s",
                **env,
            }
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "accord"],
            env=full,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url)
            yield Proc(url, proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def start_bare() -> Iterator[Proc]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--bare", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url)
        yield Proc(url, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve_bare(port: int) -> None:
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/health":
            body, ctype = b"ok", b"text/plain; charset=utf-8"
        else:
            body, ctype = BARE_JSON, b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

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
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- load generator ---------------------------------------------------------------------------


@dataclasses.dataclass
class LoadResult:
    requests: int
    errors: int
    duration_s: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def line(self, label: str) -> str:
        return (
            f"{label:<44} {self.rate:9.1f} req/s  p50 {self.percentile(50):7.2f} ms"
            f"  p99 {self.percentile(99):7.2f} ms  errors {self.errors}"
        )


def _worker(
    host: str,
    port: int,
    requests: list[bytes],
    connections: int,
    duration_s: float,
    start_at: float,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    import trio

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def one_connection(index: int) -> None:
        # Servers close keep-alive connections now and then (hypercorn after 1,000 requests):
        # reconnect as a real client would; only a request without an answer is an error.
        nonlocal errors
        i = index
        while time.time() < start_at + duration_s:
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                i = await _requests_on(stream, i)
                if i < 0:
                    return

    async def _requests_on(stream: trio.SocketStream, i: int) -> int:
        nonlocal errors
        buffer = b""
        while time.time() < start_at + duration_s:
            request = requests[i % len(requests)]
            i += 1
            begin = time.perf_counter()
            try:
                await stream.send_all(request)
            except trio.BrokenResourceError:
                return i
            while b"\r\n\r\n" not in buffer:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    errors += 1  # a request went unanswered
                    return -1
                buffer += chunk
            head, _, rest = buffer.partition(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            closing = False
            for line in head.split(b"\r\n")[1:]:
                lowered = line.lower()
                if lowered.startswith(b"content-length:"):
                    length = int(line[15:])
                elif lowered.startswith(b"connection:") and b"close" in lowered:
                    closing = True
            while len(rest) < length:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    errors += 1
                    return -1
                rest += chunk
            buffer = rest[length:]
            if time.time() >= start_at:
                latencies.append((time.perf_counter() - begin) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                if status >= 400:
                    errors += 1
            if closing:
                return i
        return i

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for index in range(connections):
                nursery.start_soon(one_connection, index)

    try:
        trio.run(main)
    except BaseException as exc:  # report, never hang the parent
        errors += 1
        print(f"load worker error: {exc!r}", file=sys.stderr)
    queue.put((latencies, statuses, errors))


def build_request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run_load(
    url: str,
    requests: list[bytes],
    *,
    connections: int = 32,
    duration_s: float = 5.0,
    processes: int = 2,
    warmup_s: float = 1.0,
) -> LoadResult:
    """Keep `connections` keep-alive connections busy for `duration_s` (after a warm-up)."""
    host, port = url.removeprefix("http://").split(":")
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    start_at = time.time() + warmup_s + 0.5
    per = [
        connections // processes + (1 if i < connections % processes else 0)
        for i in range(processes)
    ]
    workers = [
        multiprocessing.Process(
            target=_worker, args=(host, int(port), requests, n, duration_s, start_at, queue)
        )
        for n in per
        if n
    ]
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    for _ in workers:
        lat, st, err = queue.get(timeout=duration_s + warmup_s + 60)
        latencies += lat
        errors += err
        for key, value in st.items():
            statuses[key] = statuses.get(key, 0) + value
    for worker in workers:
        worker.join(timeout=10)
    return LoadResult(len(latencies), errors, duration_s, latencies, statuses)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--bare":
    _serve_bare(int(sys.argv[2]))
