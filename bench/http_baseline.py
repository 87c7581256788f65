"""HTTP floor and login throughput (issue #2 figures), beside bare hypercorn in the same run.

1. `GET /health` and `GET /api/v1/users/@me` at 32 concurrent keep-alive connections against
   Accord, each beside the bare hypercorn app serving the same bytes: requests/s, p50/p99,
   server CPU per request and the ratio. Target: users/@me >= 60% of the bare app's rate.
2. `POST /auth/login` with 8 concurrent clients (target >= 20 logins/s on 2 cores) while one
   more client polls `/health` in the same window (target p99 < 50 ms).

Run: .venv/bin/python bench/http_baseline.py [--duration 5] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

PASSWORD = "benchmark-password"


def main() -> None:
    parser = harness.bench_parser(__doc__.split("\n\n")[0], duration_s=5.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    t, c = harness.timing(args), args.connections

    with harness.start_accord() as accord:
        r = httpx.post(
            f"{accord.url}/api/v1/auth/register", json={"username": "bench", "password": PASSWORD}
        )
        auth = {"Authorization": f"Bearer {r.json()['data']['token']}"}
        me_body = httpx.get(f"{accord.url}/api/v1/users/@me", headers=auth).content

        health = harness.Load("GET", "/health", connections=c)
        me = harness.Load("GET", "/api/v1/users/@me", [auth], connections=c)
        with harness.start_bare(me_body) as bare:
            bare_health = harness.measure(bare, health, t)
            bare_me = harness.measure(bare, me, t)
        accord_health = harness.measure(accord, health, t)
        accord_me = harness.measure(accord, me, t)

        login = harness.Load(
            "POST",
            "/api/v1/auth/login",
            body=b'{"username":"bench","password":"%s"}' % PASSWORD.encode(),
            connections=8,
            processes=1,
        )
        probe = harness.Load("GET", "/health", connections=1, processes=1)
        logins, health_during = harness.run_loads(
            accord.url, [login, probe], duration_s=t.duration_s, warmup_s=t.warmup_s
        )
        rss = accord.rss_mib()

    print(f"HTTP floor, {c} connections, {t.duration_s:g} s per run")
    harness.compare("GET /health", accord_health, bare_health)
    harness.compare(
        "GET /api/v1/users/@me (bare: the same JSON bytes)",
        accord_me,
        bare_me,
        target="target >= 0.60",
    )
    print(f"Login, 8 clients, {t.duration_s:g} s, with 1 client polling /health meanwhile")
    print(logins.line("accord POST /auth/login, 8 clients"))
    print(f"  logins/s {logins.rate:.1f} (target >= 20)  statuses {logins.statuses}")
    print(health_during.line("accord GET /health meanwhile, 1 client"))
    p99 = health_during.percentile(99)
    print(f"  /health p99 during logins {p99:.1f} ms (target < 50)")
    print(f"accord RSS after the runs: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
