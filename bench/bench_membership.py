"""Join API under load: throughput and p50/p99 at 100 concurrent clients, beside a bare FastAPI endpoint.

Both servers run the same way (uvicorn, one worker, a subprocess each) and are driven by the same client
loop; the bare endpoint parses the same body and answers without auth or database, so the ratio shows
what a gated, seat-counted, outboxed join costs. Goal: ≥ 40% of the bare throughput, p99 < 50 ms.

The closed-loop figures drive the server at saturation (no think time), where p99 is mostly queueing:
100 clients waiting on one saturated process give p99 ≥ 100 / throughput, for any server. So beside them
(never instead), `*.paced_<rate>rps` runs the same 100 clients at a fixed total rate below saturation,
each sending on a schedule, latency counted from the scheduled send time (a late send counts as latency),
to show the service's own latency under a load it keeps up with.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from harness import BenchContext, Measurement, median, percentile, rate
from meadow_runtime.auth import Role, issue_token
from meadow_runtime.heap import freeze_startup_heap
from meadow_runtime.settings import Settings
from membership.app import MIGRATIONS_DIR
from membership.members.schemas import JoinBody

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 100
SPREAD_GROUPS = 10
PACED_RATE = 100  # requests per second over all clients, about half what the join API sustains here


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{base_url} did not come up in {timeout}s")
            await asyncio.sleep(0.1)  # polling a starting server, bounded by the deadline


def _bearer(settings: Settings, subject: str, role: Role) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {issue_token(settings, merchant_id='bench', subject=subject, role=role)}"
    }


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def _freeze_client_heap() -> None:
    """Keep the load generator's own garbage collector out of the figures.

    This process holds every earlier benchmark's imports and data; one full collection over that heap
    stalled all 100 client loops for ~200 ms, which alone set the p99 of the bare endpoint at 100 req/s
    (p99 143 ms → 8 ms once frozen, in a back-to-back check). The servers freeze theirs at start-up too.
    """
    freeze_startup_heap()


async def _drive(
    base_url: str, total: int, request: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]
) -> tuple[float, list[float], int]:
    """`total` requests from CLIENTS concurrent loops; returns (seconds, latencies in ms, non-2xx count)."""
    latencies: list[float] = []
    failures = 0
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for n in counter:
            started = time.perf_counter()
            response = await request(client, n)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code >= 300:
                failures += 1

    # One client (one keep-alive connection) per simulated user: a single shared httpx pool slows down
    # sharply with many concurrent connections and would measure the client instead of the server.
    clients = [httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) for _ in range(CLIENTS)]
    try:
        _freeze_client_heap()
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for client in clients))
        return time.perf_counter() - started, latencies, failures
    finally:
        for client in clients:
            await client.aclose()


async def _drive_paced(
    base_url: str, total: int, request: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]
) -> tuple[float, list[float], int]:
    """`total` requests at PACED_RATE per second from CLIENTS clients, each on its own fixed schedule."""
    latencies: list[float] = []
    failures = 0
    interval = CLIENTS / PACED_RATE
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def client_loop(client: httpx.AsyncClient, number: int, start: float) -> None:
        nonlocal failures
        for n in range(number, total, CLIENTS):
            scheduled = start + (n // CLIENTS) * interval + number * interval / CLIENTS
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule itself, not a synchronisation
            response = await request(client, n)
            latencies.append((time.perf_counter() - scheduled) * 1000)
            if response.status_code >= 300:
                failures += 1

    clients = [httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) for _ in range(CLIENTS)]
    try:
        # Connect every client first (untimed): 100 connections opened inside the first scheduled second
        # would measure connection setup, not the steady rate this run is about.
        await asyncio.gather(*(client.get("/healthz") for client in clients))
        _freeze_client_heap()
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, i, started) for i, client in enumerate(clients)))
        return time.perf_counter() - started, latencies, failures
    finally:
        for client in clients:
            await client.aclose()


def _report_paced(ctx: BenchContext, name: str, seconds: float, latencies: list[float], total: int,
                  failures: int, goal: bool) -> None:  # fmt: skip
    note = f"{CLIENTS} clients, {total} requests paced at {PACED_RATE}/s" + (
        f", {failures} failed" if failures else ""
    )
    prefix = f"{name}.paced_{PACED_RATE}rps"
    ctx.report(Measurement(f"{prefix}.throughput", rate(total, seconds), "req/s", note))
    ctx.report(Measurement(f"{prefix}.p50", median(latencies), "ms"))
    ctx.report(Measurement(f"{prefix}.p99", percentile(latencies, 99), "ms", "goal < 50 ms" if goal else ""))


def _report(ctx: BenchContext, name: str, seconds: float, latencies: list[float], total: int, failures: int,
            against: str | None) -> None:  # fmt: skip
    note = f"{CLIENTS} clients, {total} requests" + (f", {failures} failed" if failures else "")
    ctx.report(Measurement(f"{name}.throughput", rate(total, seconds), "req/s", note), against=against)
    ctx.report(Measurement(f"{name}.p50", median(latencies), "ms"))
    ctx.report(Measurement(f"{name}.p99", percentile(latencies, 99), "ms", "goal < 50 ms" if against else ""))


async def run(ctx: BenchContext) -> None:
    total = ctx.scale(10_000, 2_000)
    warmup = ctx.scale(500, 200)
    paced = ctx.scale(3_000, 1_000)
    settings: Settings = ctx.infra.settings("membership", MIGRATIONS_DIR)
    env = {
        "DATABASE_URL": settings.database_url,
        "DATABASE_POOL_SIZE": "20",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "LOG_LEVEL": "WARNING",
    }
    body_of: Callable[[int], dict[str, str]] = lambda n: {"customer_id": f"bench-{n}"}  # noqa: E731

    bare_port = _free_port()
    bare = _start([sys.executable, str(Path(__file__)), "bare", str(bare_port)], env)
    try:
        base = f"http://127.0.0.1:{bare_port}"
        await _wait_until_up(base, bare)

        async def bare_join(client: httpx.AsyncClient, n: int) -> httpx.Response:
            return await client.post(
                "/v1/groups/00000000-0000-0000-0000-000000000001/members", json=body_of(n)
            )

        await _drive(base, warmup, bare_join)
        seconds, latencies, failures = await _drive(base, total, bare_join)
        _report(ctx, "membership.bare_fastapi", seconds, latencies, total, failures, against=None)
        seconds, latencies, failures = await _drive_paced(base, paced, bare_join)
        _report_paced(ctx, "membership.bare_fastapi", seconds, latencies, paced, failures, goal=False)
    finally:
        _stop(bare)

    api_port = _free_port()
    api = _start(
        [str(ROOT / ".venv/bin/meadow"), "api", "membership", "--host", "127.0.0.1", "--port", str(api_port)],
        env,
    )
    try:
        base = f"http://127.0.0.1:{api_port}"
        await _wait_until_up(base, api)
        owner = _bearer(settings, "owner", "owner")
        storefront = _bearer(settings, "shop", "service")
        group_ids: list[str] = []
        async with httpx.AsyncClient(base_url=base) as client:
            for number in range(1 + SPREAD_GROUPS):
                created = await client.post(
                    "/v1/groups",
                    json={"name": f"bench-{number}", "subgroup_capacity": 500, "max_subgroups": 1000},
                    headers=owner,
                )
                created.raise_for_status()
                group_ids.append(created.json()["id"])
        group_id, spread = group_ids[0], group_ids[1:]

        async def join(client: httpx.AsyncClient, n: int) -> httpx.Response:
            return await client.post(f"/v1/groups/{group_id}/members", json=body_of(n), headers=storefront)

        await _drive(base, warmup, lambda client, n: join(client, total + n))
        seconds, latencies, failures = await _drive(base, total, join)
        _report(
            ctx,
            "membership.join_api",
            seconds,
            latencies,
            total,
            failures,
            against="membership.bare_fastapi.throughput",
        )

        # The same load spread over several groups: joins to one group queue on its current sub-group
        # row by design ("first sub-group with room"), joins to different groups do not.
        async def join_spread(client: httpx.AsyncClient, n: int) -> httpx.Response:
            path = f"/v1/groups/{spread[n % SPREAD_GROUPS]}/members"
            return await client.post(path, json=body_of(2 * total + n), headers=storefront)

        seconds, latencies, failures = await _drive(base, total, join_spread)
        _report(
            ctx,
            f"membership.join_api.{SPREAD_GROUPS}_groups",
            seconds,
            latencies,
            total,
            failures,
            against="membership.bare_fastapi.throughput",
        )

        # The single group again (fresh customers), paced below saturation: the service's own latency.
        async def join_paced(client: httpx.AsyncClient, n: int) -> httpx.Response:
            return await join(client, 3 * total + n)

        seconds, latencies, failures = await _drive_paced(base, paced, join_paced)
        _report_paced(ctx, "membership.join_api", seconds, latencies, paced, failures, goal=True)
    finally:
        _stop(api)


def _serve_bare(port: int) -> None:
    """The baseline: the same route and body model, answered without auth, database or events."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/groups/{group_id}/members")
    async def join(group_id: str, body: JoinBody) -> dict[str, str]:
        return {"group_id": group_id, "customer_id": body.customer_id, "subgroup_number": "1"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__" and sys.argv[1:2] == ["bare"]:
    _serve_bare(int(sys.argv[2]))
