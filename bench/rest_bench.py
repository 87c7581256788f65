"""Member list (issue #3 figure), beside bare hypercorn in the same run.

`GET /api/v1/spaces/{id}/members?limit=100` on a space with 1,000 members (every other one
with a role, so role loading is exercised), each reader following `cursor.after` page by page
and starting over after the last page; 10 concurrent readers, each request from one of 10
members in turn. Prints requests/s, p50/p99 and server CPU per request for Accord and for the
bare hypercorn app serving the first page's bytes, and the ratio of their rates.

Run: .venv/bin/python bench/rest_bench.py [--duration 10] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness


def main() -> None:
    parser = harness.bench_parser(__doc__.split("\n\n")[0], duration_s=10.0)
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--page", type=int, default=100)
    args = parser.parse_args()
    t = harness.timing(args)

    with harness.start_seeded_accord([args.members], roles_every=2) as (accord, (space,)):
        path = f"/api/v1/spaces/{space.space_id}/members?limit={args.page}"
        readers = space.auth(first=1, count=args.readers)
        first = httpx.get(f"{accord.url}{path}", headers=readers[0])
        assert first.status_code == 200, first.text
        assert len(first.json()["data"]) == args.page, first.text[:200]
        assert first.json()["cursor"]["has_more"], first.text[-200:]
        load = harness.Load("GET", path, readers, follow_cursor=True, connections=args.readers)
        with harness.start_bare(first.content) as bare:
            baseline = harness.measure(bare, load, t)
        result = harness.measure(accord, load, t)

    print(
        f"Member list: {args.members} members, pages of {args.page} following the cursor, "
        f"{args.readers} concurrent readers, {t.duration_s:g} s per run, "
        f"page body {len(first.content)} bytes"
    )
    harness.compare(f"GET /spaces/{{id}}/members?limit={args.page}", result, baseline)


if __name__ == "__main__":
    main()
