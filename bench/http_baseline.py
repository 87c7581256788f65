"""HTTP floor and login throughput (issue: foundation figures).

1. GET /health and GET /api/v1/users/@me at 32 concurrent keep-alive connections against
   Accord, each beside a bare hypercorn ASGI app serving the same bytes in the same run.
   Target: users/@me >= 60% of the bare app's rate.
2. Logins/s with 8 concurrent clients (target >= 20/s on 2 cores) while one more client
   polls /health (target p99 < 50 ms).

Run: .venv/bin/python bench/http_baseline.py [--duration 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import build_request, cpu_seconds, run_load, start_accord, start_bare


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    d, c = args.duration, args.connections

    with start_bare() as bare:
        bare_health = run_load(
            bare.url, [build_request("GET", "/health")], connections=c, duration_s=d
        )
        bare_json = run_load(
            bare.url, [build_request("GET", "/api/v1/users/@me")], connections=c, duration_s=d
        )

    with start_accord() as accord:
        r = httpx.post(
            f"{accord.url}/api/v1/auth/register",
            json={"username": "bench", "password": "benchmark-password"},
        )
        token = r.json()["data"]["token"]
        auth = {"Authorization": f"Bearer {token}"}
        cpu0 = cpu_seconds(accord.pid)
        health = run_load(
            accord.url, [build_request("GET", "/health")], connections=c, duration_s=d
        )
        cpu1 = cpu_seconds(accord.pid)
        me = run_load(
            accord.url,
            [build_request("GET", "/api/v1/users/@me", auth)],
            connections=c,
            duration_s=d,
        )
        cpu2 = cpu_seconds(accord.pid)

        body = b'{"username":"bench","password":"benchmark-password"}'
        login = build_request(
            "POST", "/api/v1/auth/login", {"Content-Type": "application/json"}, body
        )
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            probe = pool.submit(
                run_load,
                accord.url,
                [build_request("GET", "/health")],
                connections=1,
                duration_s=d,
                processes=1,
            )
            logins = run_load(accord.url, [login], connections=8, duration_s=d, processes=1)
            health_during = probe.result(timeout=d + 60)

    print(f"HTTP floor, {c} connections, {d:.0f} s per run")
    print(bare_health.line("bare hypercorn GET /health"))
    print(health.line("accord GET /health"))
    print(f"  ratio accord/bare: {health.rate / bare_health.rate:.2f}")
    print(bare_json.line("bare hypercorn GET (same JSON bytes)"))
    print(me.line("accord GET /api/v1/users/@me"))
    print(f"  ratio accord/bare: {me.rate / bare_json.rate:.2f}  (target >= 0.60)")
    health_cpu_ms = 1000 * (cpu1 - cpu0) / max(1, health.requests)
    me_cpu_ms = 1000 * (cpu2 - cpu1) / max(1, me.requests)
    print(f"  server CPU per request: /health {health_cpu_ms:.2f} ms, users/@me {me_cpu_ms:.2f} ms")
    print(logins.line("accord POST /auth/login, 8 clients"))
    print(f"  logins/s {logins.rate:.1f} (target >= 20)  statuses {logins.statuses}")
    print(health_during.line("  /health meanwhile, 1 client"))
    print(f"  /health p99 during logins {health_during.percentile(99):.1f} ms (target < 50)")


if __name__ == "__main__":
    main()
