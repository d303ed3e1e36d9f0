"""`make run`: the whole system on this machine, with demo data, until Ctrl-C.

Starts Postgres and Tansu under `.devstack/` (or uses DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS), creates
each service's database and every topic, migrates, starts each service's API and worker as child
processes, waits until every API is ready, loads demo data, prints the URLs and a dev token. Ctrl-C (or
SIGTERM) stops the children first, then the broker, then Postgres, and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from meadow_contracts import ALL_TOPICS

from .provision import create_databases, create_topics, plain_url, sqlalchemy_url, with_database
from .servers import PostgresServer, TansuBroker, free_port

SERVICES = ("membership", "content", "rewards", "segments")
READY_TIMEOUT_SECONDS = 60
ROOT = Path.cwd() / ".devstack"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _preferred_port(preferred: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _start_child(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Child:
    log = (log_dir / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "meadow_runtime.cli", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # we decide when children stop, not the terminal's Ctrl-C
    )
    return Child(name, process)


def _stop_children(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


async def _wait_ready(urls: dict[str, str], children: list[Child]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending = dict(urls)
    async with httpx.AsyncClient(timeout=2) as client:
        while pending:
            for child in children:
                if child.process.poll() is not None:
                    raise RuntimeError(
                        f"{child.name} exited with {child.process.returncode}; see .devstack/logs"
                    )
            for name, url in list(pending.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        del pending[name]
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {READY_TIMEOUT_SECONDS}s: {sorted(pending)}")
            await asyncio.sleep(0.2)  # polling readiness inside a deadline


def main() -> int:
    from meadow_runtime.auth import issue_token
    from meadow_runtime.migrations import upgrade
    from meadow_runtime.settings import Settings

    from .demo import load_demo_data

    ROOT.mkdir(exist_ok=True)
    ROOT.chmod(0o755)
    log_dir = ROOT / "logs"
    log_dir.mkdir(exist_ok=True)
    children: list[Child] = []
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)  # explicit: a shell may have started us with SIGINT ignored
    postgres: PostgresServer | None = None
    broker: TansuBroker | None = None
    try:
        admin_url = os.environ.get("DATABASE_URL")
        if admin_url:
            admin_url = with_database(plain_url(admin_url), "postgres")
        else:
            postgres = PostgresServer(ROOT / "pg", port=_preferred_port(55432))
            postgres.start()
            admin_url = postgres.admin_url
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = TansuBroker(log_dir / "tansu.log", port=_preferred_port(59092))
            broker.start()
            bootstrap = broker.bootstrap_servers
        print(f"postgres  {admin_url}\nkafka     {bootstrap}", flush=True)

        databases = {service: f"meadow_{service}" for service in SERVICES}
        asyncio.run(create_databases(admin_url, databases.values()))
        asyncio.run(create_topics(bootstrap, ALL_TOPICS))
        env_base = {
            k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"}
        }
        env_base.update({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "ENVIRONMENT": "dev", "LOG_LEVEL": "INFO"})
        # On a developer's machine a webhook receiver is usually http://localhost:…; the content service
        # refuses such URLs by default (SSRF guard), so the dev stack opens both escape hatches unless the
        # developer has set them.
        env_base.setdefault("WEBHOOK_ALLOW_HTTP", "true")
        env_base.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
        urls: dict[str, str] = {}
        for number, service in enumerate(SERVICES):
            database_url = sqlalchemy_url(with_database(admin_url, databases[service]))
            upgrade(_migrations_dir(service), database_url)
            env = {**env_base, "DATABASE_URL": database_url}
            port = _preferred_port(8101 + number)
            urls[service] = f"http://127.0.0.1:{port}"
            children.append(
                _start_child(
                    f"{service}-api",
                    ["api", service, "--host", "127.0.0.1", "--port", str(port)],
                    env,
                    log_dir,
                )
            )
            worker_args = ["worker", service] + (["--with-scheduler"] if service == "content" else [])
            children.append(_start_child(f"{service}-worker", worker_args, env, log_dir))
        asyncio.run(_wait_ready(urls, children))

        settings = Settings(kafka_bootstrap_servers=bootstrap)
        token = issue_token(
            settings, merchant_id="demo-merchant", subject="demo-owner", role="owner", ttl_seconds=7 * 86400
        )
        summary = asyncio.run(load_demo_data(urls, token, settings))
        print("\nMeadow is running. Every API is ready:")
        for service, url in urls.items():
            print(f"  {service:<11} {url}/docs   (ready: {url}/readyz, metrics: {url}/metrics)")
        print(f"\nDemo data: {summary}")
        print(f"\nDev token (merchant demo-merchant, role owner):\n{token}\n")
        print(f"Example:\n  curl -H 'Authorization: Bearer {token[:16]}…' {urls['rewards']}/docs\n")
        print("Logs in .devstack/logs. Press Ctrl-C to stop everything.", flush=True)
        while not stopping:
            for child in children:
                if child.process.poll() is not None:
                    print(f"{child.name} exited with {child.process.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(1)  # supervising children, not synchronising anything
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean stop short
        print("\nstopping…", flush=True)
        _stop_children(children)
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()
        print("stopped.", flush=True)


def _migrations_dir(service: str) -> Path:
    import importlib

    migrations: Path = importlib.import_module(f"{service}.app").MIGRATIONS_DIR
    return migrations


if __name__ == "__main__":
    raise SystemExit(main())
