"""Message send and history (issue #4 figures), beside bare hypercorn in the same run.

The database is seeded before the server starts: a space of 110 members and one of 1,000, each
member a user with a bearer token; requests rotate over the members' tokens, so the messages
come from many authors. Each scenario runs against the bare hypercorn app serving the same
response bytes, then against Accord, and prints both lines and the ratio of their rates:

- send `POST /channels/{id}/messages`, 1 sender, 110-member channel: p50 (target <= 15 ms);
- send, 10 concurrent senders, 110-member channel: requests/s (target >= 135);
- send, 10 concurrent senders, 1,000-member channel: requests/s;
- history `GET /channels/{id}/messages?limit=50`, 10 concurrent readers: requests/s
  (target >= 330);
- server CPU per message sent (the server's user+system time over the measured window divided
  by the messages sent) in the 110- and the 1,000-member channel (target <= 5 ms, not growing
  with the member count), beside the bare app's CPU per request.

Run: .venv/bin/python bench/messages_bench.py [--duration 5] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

SIZES = (110, 1000)
MESSAGE = b'{"content":"bench message: the quick brown fox jumps over the lazy dog"}'


def main() -> None:
    args = harness.bench_parser(__doc__.split("\n\n")[0], duration_s=5.0).parse_args()
    t = harness.timing(args)

    with harness.start_seeded_accord(SIZES) as (accord, (small, large)):

        def send(channel_id: str, headers: list[dict[str, str]], senders: int) -> harness.Load:
            path = f"/api/v1/channels/{channel_id}/messages"
            return harness.Load("POST", path, headers, MESSAGE, connections=senders, processes=1)

        send_1 = send(small.channel_id, small.auth(), 1)
        send_small = send(small.channel_id, small.auth(), 10)
        send_large = send(large.channel_id, large.auth(), 10)
        history = harness.Load(
            "GET",
            f"/api/v1/channels/{small.channel_id}/messages?limit=50",
            small.auth(),
            connections=10,
            processes=1,
        )

        headers = {**small.auth()[0], "Content-Type": "application/json"}
        sample = httpx.post(f"{accord.url}{send_1.path}", content=MESSAGE, headers=headers)
        assert sample.status_code == 200, sample.text
        with harness.start_bare(sample.content) as bare:
            bare_send_1 = harness.measure(bare, send_1, t)
            bare_send = harness.measure(bare, send_small, t)
        accord_send_1 = harness.measure(accord, send_1, t)
        accord_send_small = harness.measure(accord, send_small, t)
        accord_send_large = harness.measure(accord, send_large, t)

        page = httpx.get(f"{accord.url}{history.path}", headers=small.auth()[0])
        assert page.status_code == 200, page.text
        assert len(page.json()["data"]) == 50, page.text[:200]
        with harness.start_bare(page.content) as bare:
            bare_history = harness.measure(bare, history, t)
        accord_history = harness.measure(accord, history, t)
        rss = accord.rss_mib()

    print(f"Messages, {t.duration_s:g} s per run; {SIZES[0]}- and {SIZES[1]}-member spaces")
    harness.compare(
        f"send, 1 sender, {SIZES[0]} members",
        accord_send_1,
        bare_send_1,
        target=f"p50 {accord_send_1.percentile(50):.1f} ms, target <= 15 ms",
    )
    harness.compare(
        f"send, 10 senders, {SIZES[0]} members",
        accord_send_small,
        bare_send,
        target=f"{accord_send_small.rate:.0f} req/s, target >= 135",
    )
    harness.compare(f"send, 10 senders, {SIZES[1]} members", accord_send_large, bare_send)
    harness.compare(
        "history GET /channels/{id}/messages?limit=50, 10 readers",
        accord_history,
        bare_history,
        target=f"{accord_history.rate:.0f} req/s, target >= 330",
    )
    cpu_small = accord_send_small.cpu_ms_per_request
    cpu_large = accord_send_large.cpu_ms_per_request
    print("server CPU per message sent (target <= 5 ms, not growing with the member count)")
    print(f"  bare hypercorn, same response bytes: {bare_send.cpu_ms_per_request:.2f} ms/request")
    print(f"  accord, {SIZES[0]:>4} members: {cpu_small:.2f} ms/message")
    print(f"  accord, {SIZES[1]:>4} members: {cpu_large:.2f} ms/message")
    print(
        f"  ratio {SIZES[1]}/{SIZES[0]} members: {cpu_large / cpu_small:.2f};"
        f" ratio accord/bare ({SIZES[0]} members): "
        f"{cpu_small / bare_send.cpu_ms_per_request:.1f}x the baseline's CPU per request"
    )
    print(f"accord RSS after the runs: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
