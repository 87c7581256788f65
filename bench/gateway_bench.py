"""Gateway fan-out benchmark (issue #5): one `message.create` posted over REST, delivered to
100 and to 1,000 connected gateway clients, beside a minimal trio-websocket broadcast server
(the stack's floor) measured in the same run.

Clients live in separate worker processes (plain sockets + epoll, so the client side costs
little); every connection is opened and identified first (the connect storm is drained before
timing). Per round the parent posts one message and each worker records, per connection, when
the frame carrying that round's marker arrived (same host clock). Figures:

- p99 over rounds of "send -> last receipt" (send = just before the REST POST; for the
  baseline, just before the broadcast command), and events lost;
- server CPU per delivered event (process CPU during the rounds / deliveries; for Accord this
  includes the REST request that creates the message);
- memory per idle connection (RSS after connecting N clients minus RSS before, / N) and idle
  process RSS (after start-up and set-up, before any client connects).

Run: `.venv/bin/python bench/gateway_bench.py [--clients 100 1000] [--rounds 40] [--workers 4]`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Server, cpu_seconds, free_port, rss_kib, start_accord

MARKER = b"bench-"

# -- client worker (a separate process) ------------------------------------------------------


class WsClient:
    """A minimal RFC 6455 client on a blocking-then-nonblocking socket."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during handshake")
            head += chunk
        status, _, rest = head.partition(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n")[0]:
            raise ConnectionError(status.decode(errors="replace"))
        self.buffer = bytearray(rest)

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        header = bytearray([0x81])
        if len(payload) < 126:
            header.append(0x80 | len(payload))
        elif len(payload) < 65536:
            header.append(0x80 | 126)
            header += struct.pack("!H", len(payload))
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes(header) + mask + masked)

    def frames(self) -> list[tuple[int, bytes]]:
        """Complete frames in the buffer (server frames are unmasked)."""
        out = []
        buf = self.buffer
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            length = buf[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    break
                length = struct.unpack_from("!H", buf, 2)[0]
                offset = 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length = struct.unpack_from("!Q", buf, 2)[0]
                offset = 10
            if len(buf) < offset + length:
                break
            out.append((opcode, bytes(buf[offset : offset + length])))
            del buf[: offset + length]
        return out

    def read_frame_blocking(self) -> tuple[int, bytes]:
        while True:
            frames = self.frames()
            if frames:
                # keep any extra frames for later
                for frame in reversed(frames[1:]):
                    self._unread(frame)
                return frames[0]
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk

    def _unread(self, frame: tuple[int, bytes]) -> None:
        opcode, payload = frame
        header = bytearray([0x80 | opcode])
        if len(payload) < 126:
            header.append(len(payload))
        elif len(payload) < 65536:
            header.append(126)
            header += struct.pack("!H", len(payload))
        else:
            header.append(127)
            header += struct.pack("!Q", len(payload))
        self.buffer[0:0] = bytes(header) + payload


def worker_main(argv: list[str]) -> None:
    """`worker HOST PORT PATH COUNT MODE TOKENS_FILE`: connect COUNT clients, print `ready`,
    then record receipts until `done` arrives on stdin, and print the results as JSON."""
    host, port, path, count, mode, tokens_file = argv
    tokens = json.loads(Path(tokens_file).read_text())
    clients: list[WsClient] = []
    for index in range(int(count)):
        client = WsClient(host, int(port), path)
        if mode == "accord":
            opcode, hello = client.read_frame_blocking()
            assert json.loads(hello)["op"] == 5
            token = tokens[index % len(tokens)]
            client.send_text(
                json.dumps({"op": 2, "data": {"token": token, "intents": ["messages"]}})
            )
            while True:
                opcode, payload = client.read_frame_blocking()
                if opcode == 1 and b'"type":"ready"' in payload:
                    break
        clients.append(client)
    for client in clients:
        client.sock.setblocking(False)
    poller = select.epoll()
    by_fd = {client.sock.fileno(): client for client in clients}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    stdin_fd = sys.stdin.fileno()
    poller.register(stdin_fd, select.EPOLLIN)
    print("ready", flush=True)
    receipts: dict[int, list[float]] = {}  # round -> receipt times
    running = True
    while running:
        for fd, _ in poller.poll(1.0):
            if fd == stdin_fd:
                line = sys.stdin.readline()
                if not line or line.strip() == "done":
                    running = False
                continue
            client = by_fd[fd]
            try:
                chunk = client.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            now = time.time()
            if not chunk:
                poller.unregister(fd)
                continue
            client.buffer += chunk
            for opcode, payload in client.frames():
                if opcode == 9:  # ping -> pong
                    client.sock.setblocking(True)
                    client.sock.sendall(b"\x8a\x80" + b"\x00\x00\x00\x00")
                    client.sock.setblocking(False)
                    continue
                at = payload.find(MARKER)
                if opcode != 1 or at < 0:
                    continue
                end = at + len(MARKER)
                digits = end
                while digits < len(payload) and 48 <= payload[digits] <= 57:
                    digits += 1
                receipts.setdefault(int(payload[end:digits]), []).append(now)
    print(json.dumps({str(r): [len(t), max(t)] for r, t in receipts.items()}), flush=True)


# -- the baseline: a minimal trio-websocket broadcast server ------------------------------------

_BASELINE = r"""
import sys, trio
from trio_websocket import serve_websocket, ConnectionClosed

conns = set()

async def pump(ws, receive):
    async for message in receive:
        await ws.send_message(message)

async def handler(request):
    ws = await request.accept()
    send, receive = trio.open_memory_channel(64)
    entry = (ws, send)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump, ws, receive)
            conns.add(entry)
            try:
                while True:
                    message = await ws.get_message()
                    if message.startswith("broadcast "):
                        payload = message[len("broadcast "):]  # encoded once, shared
                        for _, other in list(conns):
                            try:
                                other.send_nowait(payload)
                            except trio.WouldBlock:
                                pass
            except ConnectionClosed:
                pass
            finally:
                conns.discard(entry)
                nursery.cancel_scope.cancel()
    except BaseException:
        pass

async def main():
    print("listening", flush=True)
    await serve_websocket(handler, "127.0.0.1", int(sys.argv[1]), ssl_context=None)

trio.run(main)
"""


def start_baseline() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _BASELINE, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    process.stdout.readline()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, port


# -- the parent -----------------------------------------------------------------------------------


def spawn_workers(
    host: str, port: int, path: str, clients: int, workers: int, mode: str, tokens_file: str
) -> list[subprocess.Popen[str]]:
    share = [clients // workers + (1 if i < clients % workers else 0) for i in range(workers)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", host, str(port), path, str(n), mode, tokens_file],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in share
        if n
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"worker failed to connect: {line!r}")
    return procs


def collect(procs: list[subprocess.Popen[str]]) -> dict[int, tuple[int, float]]:
    merged: dict[int, tuple[int, float]] = {}
    for proc in procs:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write("done\n")
        proc.stdin.flush()
        result = json.loads(proc.stdout.readline())
        proc.wait(timeout=30)
        for key, (count, last) in result.items():
            previous = merged.get(int(key), (0, 0.0))
            merged[int(key)] = (previous[0] + count, max(previous[1], last))
    return merged


def summarize(
    name: str,
    clients: int,
    sent: dict[int, float],
    received: dict[int, tuple[int, float]],
    cpu_s: float,
    rss_before: int,
    rss_after: int,
    idle_rss: int,
) -> dict[str, float]:
    latencies = []
    lost = 0
    for round_id, at in sent.items():
        count, last = received.get(round_id, (0, at))
        lost += clients - count
        latencies.append((last - at) * 1000)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    deliveries = sum(received.get(r, (0, 0))[0] for r in sent)
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": p99,
        "lost": lost,
        "cpu_ms_per_event": cpu_s * 1000 / max(1, deliveries),
        "kib_per_conn": (rss_after - rss_before) / clients,
        "idle_rss_mib": idle_rss / 1024,
    }


def run_accord(
    server: Server,
    clients: int,
    rounds: int,
    workers: int,
    tokens_file: str,
    poster: dict[str, str],
    channel_id: str,
    idle_rss: int,
) -> dict[str, float]:
    host, port = server.url.removeprefix("http://").split(":")
    pid = server.process.pid
    rss_before = rss_kib(pid)
    procs = spawn_workers(host, int(port), "/ws", clients, workers, "accord", tokens_file)
    time.sleep(1.0)  # the connect storm is over; let the server settle
    rss_after = rss_kib(pid)
    sent: dict[int, float] = {}
    post_ms: list[float] = []
    with httpx.Client(base_url=server.url, headers=poster, timeout=30) as http:
        http.post(f"/api/v1/channels/{channel_id}/messages", json={"content": "warm-up"})
        time.sleep(0.5)
        cpu_start = cpu_seconds(pid)
        for round_id in range(rounds):
            sent[round_id] = time.time()
            response = http.post(
                f"/api/v1/channels/{channel_id}/messages", json={"content": f"bench-{round_id}"}
            )
            post_ms.append((time.time() - sent[round_id]) * 1000)
            response.raise_for_status()
            time.sleep(0.25 if clients <= 100 else 0.6)
        time.sleep(1.0)
        cpu_s = cpu_seconds(pid) - cpu_start
    received = collect(procs)
    result = summarize("accord", clients, sent, received, cpu_s, rss_before, rss_after, idle_rss)
    post_ms.sort()
    result["post_p50_ms"] = statistics.median(post_ms)
    result["post_p99_ms"] = post_ms[min(len(post_ms) - 1, int(len(post_ms) * 0.99))]
    return result


def run_baseline(clients: int, rounds: int, workers: int, tokens_file: str) -> dict[str, float]:
    process, port = start_baseline()
    try:
        time.sleep(0.5)
        idle = rss_kib(process.pid)
        procs = spawn_workers("127.0.0.1", port, "/", clients, workers, "baseline", tokens_file)
        time.sleep(1.0)
        rss_after = rss_kib(process.pid)
        control = WsClient("127.0.0.1", port, "/")
        frame = json.dumps(
            {
                "op": 0,
                "type": "message.create",
                "seq": 1,
                "data": {
                    "id": "1" * 18,
                    "channel_id": "2" * 18,
                    "space_id": "3" * 18,
                    "author_id": "4" * 18,
                    "content": "bench-ROUND",
                    "type": "default",
                    "timestamp": "2026-01-01T00:00:00",
                    "edited_at": None,
                    "tts": False,
                    "pinned": False,
                    "mention_everyone": False,
                    "mentions": [],
                    "mention_roles": [],
                    "attachments": [],
                    "embeds": [],
                    "reactions": None,
                    "reply_to": None,
                    "flags": 0,
                },
            }
        )
        sent: dict[int, float] = {}
        cpu_start = cpu_seconds(process.pid)
        for round_id in range(rounds):
            sent[round_id] = time.time()
            control.send_text("broadcast " + frame.replace("ROUND", str(round_id)))
            time.sleep(0.25 if clients <= 100 else 0.6)
        time.sleep(1.0)
        cpu_s = cpu_seconds(process.pid) - cpu_start
        received = collect(procs)
        # the control connection receives each broadcast too: not counted (workers only)
        result = summarize("baseline", clients, sent, received, cpu_s, idle, rss_after, idle)
        result["post_p50_ms"] = result["post_p99_ms"] = 0.0  # no REST request in the floor
        return result
    finally:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_accord(
            Path(tmp),
            ACCORD_GATEWAY_CONNECT_RATE="1000000/min",
            ACCORD_GATEWAY_MAX_SESSIONS_PER_USER="10000",  # clients share --users accounts
            ACCORD_GATEWAY_HEARTBEAT_MS="600000",
            ACCORD_GATEWAY_QUEUE_SIZE="512",
            ACCORD_LOG="accord=warning,hypercorn=warning",
        ) as server,
    ):
        with httpx.Client(base_url=server.url, timeout=30) as http:
            tokens = []
            for i in range(args.users):
                r = http.post(
                    "/api/v1/auth/register",
                    json={"username": f"bench{i}", "password": "correct horse"},
                )
                r.raise_for_status()
                tokens.append(r.json()["data"]["token"])
            poster = {"Authorization": f"Bearer {tokens[0]}"}
            me_spaces = http.get("/api/v1/users/@me/spaces", headers=poster).json()["data"]
            space_id = me_spaces[0]["id"]
            channels = http.get(f"/api/v1/spaces/{space_id}/channels", headers=poster).json()[
                "data"
            ]
            channel_id = next(c["id"] for c in channels if c["type"] == "text")
        tokens_file = str(Path(tmp) / "tokens.json")
        Path(tokens_file).write_text(json.dumps([f"Bearer {t}" for t in tokens]))
        time.sleep(1.0)
        idle_rss = rss_kib(server.process.pid)
        print(f"accord idle RSS after start-up and set-up: {idle_rss / 1024:.1f} MiB")
        rows = []
        for clients in args.clients:
            accord = run_accord(
                server,
                clients,
                args.rounds,
                args.workers,
                tokens_file,
                poster,
                channel_id,
                idle_rss,
            )
            floor = run_baseline(clients, args.rounds, args.workers, tokens_file)
            rows.append((clients, accord, floor))
            time.sleep(1.0)
    header = f"{'clients':>7} {'figure':<26} {'accord':>10} {'trio-ws floor':>14} {'target':>10}"
    print(header)
    print("-" * len(header))
    for clients, accord, floor in rows:
        target_p99 = "50" if clients <= 100 else "300"
        for key, label, target in (
            ("p50_ms", "p50 send->last (ms)", ""),
            ("p99_ms", "p99 send->last (ms)", f"<= {target_p99}"),
            ("post_p50_ms", "  of which REST POST p50", ""),
            ("post_p99_ms", "  of which REST POST p99", ""),
            ("lost", "events lost", "0"),
            ("cpu_ms_per_event", "CPU per delivery (ms)", "<= 0.3"),
            ("kib_per_conn", "memory per idle conn (KiB)", "<= 50"),
            ("idle_rss_mib", "idle process RSS (MiB)", "<= 60"),
        ):
            print(f"{clients:>7} {label:<26} {accord[key]:>10.2f} {floor[key]:>14.2f} {target:>10}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main(sys.argv[2:])
    else:
        main()
