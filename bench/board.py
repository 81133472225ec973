"""Benchmark: how long progress takes to render the supervision board (督办看板).

For each size (50 and 5,000 work points):
1. A fresh progress database (progress's migrations) gets the work points in work_point_view and
   work_point_state directly (as bench/sweeper.py does), spread over 13 sections, with colours
   and reasons set as a stalled plan would have them (a third red, some yellow, blue, in review
   and closed).
2. Progress's own app (progress.main.create_app around progress.main.build; nothing started: the
   board needs only the database and the token verifier) serves `GET /board/plans/{plan}` to an
   in-process HTTP client (httpx over ASGI, no network) with the coordinating office's session
   cookie: a real ES256 access token, verified by progress's JwtVerifier with the benchmark's
   own key. The timing is the server's: routing, token check, queries, rendering.

Prints board_render_<size>_p50_ms and _p95_ms for the whole board, the same for a filtered board
(one agency), and the page size.

Run: .venv/bin/python bench/board.py [--sizes 50,5000] [--requests 30]
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import httpx
import jwt
import psycopg
from _common import (
    bench_databases,
    note,
    percentile,
    print_environment,
    result,
    run,
    run_id,
    setup,
    verdict,
)
from _progress import NOW, bench_agencies, build_progress, seed_work_points
from cryptography.hazmat.primitives.asymmetric import ec
from duban_shared.auth import JwtVerifier
from duban_shared.clock import ManualClock
from progress.api.board.session import COOKIE
from progress.main import create_app

TARGET_MS = 200.0
PLAN = "bench-0000"  # _progress.work_point_id: the first 9,999 work points form one plan
KID = "bench-board"


class _Keys:
    """The benchmark's signing key, as the verifier would find it in the registry's JWKS."""

    def __init__(self, public: jwt.PyJWK) -> None:
        self._public = public

    async def key(self, kid: str) -> jwt.PyJWK | None:
        return self._public if kid == KID else None


def office_token(private: ec.EllipticCurvePrivateKey) -> str:
    """An access token of a coordinator client, as the registry issues them."""
    now = int(NOW.timestamp())
    claims = {
        "iss": "duban-registry",
        "aud": "duban",
        "sub": "coordinator-bench",
        "client_id": "coordinator-bench",
        "role": "coordinator",
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, private, algorithm="ES256", headers={"kid": KID, "typ": "at+jwt"})


def colour(dsn: str) -> None:
    """Sections and colours: 13 sections; a third red, a sixth yellow, some blue, a few in
    review or closed, the rest green."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE work_point_view SET section = (number - 1) % 13 + 1")
        conn.execute(
            """
            UPDATE work_point_state s SET
              level = CASE WHEN v.number % 3 = 0 THEN 'red' WHEN v.number % 6 = 1 THEN 'yellow'
                           WHEN v.number % 12 = 5 THEN 'blue' ELSE 'green' END,
              reasons = CASE WHEN v.number % 3 = 0 THEN '["overdue", "silent"]'::json
                             WHEN v.number % 6 = 1 THEN '["behind_pace"]'::json
                             WHEN v.number % 12 = 5 THEN '["due_soon"]'::json
                             ELSE '[]'::json END,
              closure = CASE WHEN v.number % 25 = 2 THEN 'in_review'
                             WHEN v.number % 25 = 4 THEN 'closed' END
            FROM work_point_view v WHERE v.id = s.work_point_id
            """
        )
        conn.execute("VACUUM ANALYZE work_point_view")
        conn.execute("VACUUM ANALYZE work_point_state")


async def measure(
    http: httpx.AsyncClient, path: str, params: dict[str, str], requests: int
) -> tuple[list[float], int]:
    """Milliseconds per request (after warming up), and the page's size in bytes."""
    size = 0
    for _ in range(3):
        response = await http.get(path, params=params)
        assert response.status_code == 200, (response.status_code, response.text[:300])
        size = len(response.content)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await http.get(path, params=params)
        times.append(1000 * (time.perf_counter() - started))
        assert response.status_code == 200
    return times, size


async def scenario(size: int, requests: int, tag: str) -> dict[str, Any]:
    """One size in a fresh database: seed, colour, render."""
    agencies = bench_agencies(60)
    private = ec.generate_private_key(ec.SECP256R1())
    public = jwt.PyJWK.from_json(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    with bench_databases(f"{tag}_{size}", "progress") as dbs:
        db = dbs["progress"]
        await seed_work_points(db.url, size, agencies, NOW)
        colour(db.dsn)
        service = build_progress(db.url, f"bench-board-{tag}.")
        service.verifier = JwtVerifier(  # type: ignore[assignment]
            _Keys(public), issuer="duban-registry", audience="duban", clock=ManualClock(NOW)
        )
        try:
            app = create_app(service)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://bench",
                cookies={COOKIE: office_token(private)},
            ) as http:
                path = f"/board/plans/{PLAN}"
                whole, page_bytes = await measure(http, path, {}, requests)
                one = {"agency": str(agencies[0].agency_id)}
                filtered, _ = await measure(http, path, one, requests)
        finally:
            await service.close()
    return {"whole": whole, "filtered": filtered, "bytes": page_bytes}


async def main(args: argparse.Namespace) -> None:
    """Every size; print the figures."""
    tag = run_id()
    for size in args.sizes:
        figures = await scenario(size, args.requests, tag)
        whole, filtered = figures["whole"], figures["filtered"]
        note(f"{size:,} work points: page {figures['bytes'] / 1024:.0f} KiB")
        result(f"board_render_{size}_p50_ms", percentile(whole, 50), "ms")
        result(f"board_render_{size}_p95_ms", percentile(whole, 95), "ms")
        result(f"board_render_{size}_one_agency_p50_ms", percentile(filtered, 50), "ms")
        result(f"board_page_{size}_kib", figures["bytes"] / 1024, "KiB", 0)
        if size == max(args.sizes):
            p50 = percentile(whole, 50)
            verdict(f"board_render_{size}_p50_ms", p50, f"< {TARGET_MS:.0f} ms", p50 < TARGET_MS)


def parse_args() -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,5000", help="work points per run (50,5000)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page (30)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer requests")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        args.requests = 5
    if max(args.sizes) > 9999:
        parser.error("at most 9,999 work points (one plan)")
    return args


if __name__ == "__main__":
    setup()
    options = parse_args()
    print_environment("board", vars(options))
    run(lambda: main(options))
