"""`meadow <command> …`: every process Meadow runs, in development and in the cluster alike."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Callable
from datetime import datetime

from .heap import freeze_startup_heap
from .service import ServiceDefinition
from .settings import Settings

SERVICES: tuple[str, ...] = ("membership", "content", "rewards", "segments")


def load_service(name: str) -> ServiceDefinition:
    if name not in SERVICES:
        raise SystemExit(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
    service: ServiceDefinition = importlib.import_module(f"{name}.app").SERVICE
    return service


def _settings(service: str) -> Settings:
    return Settings().for_service(service)


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    module = importlib.import_module(f"{args.service}.app")
    app = module.create_app(_settings(args.service))
    freeze_startup_heap()
    uvicorn.run(
        app, host=args.host, port=args.port, log_config=None, access_log=False, timeout_graceful_shutdown=10
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .worker import run_worker

    service = load_service(args.service)
    asyncio.run(
        run_worker(
            _settings(args.service),
            service,
            with_scheduler=args.with_scheduler,
            health_port=args.health_port,
        )
    )
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    service = load_service(args.service)
    if service.scheduler is None:
        raise SystemExit(f"{args.service} has no scheduler")
    from .worker import run_worker

    asyncio.run(
        run_worker(_settings(args.service), service, with_scheduler=True, health_port=args.health_port)
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from .migrations import upgrade

    upgrade(load_service(args.service).migrations_dir, _settings(args.service).database_url, args.revision)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .relay import replay

    count = asyncio.run(replay(_settings(args.service), args.since, args.until))
    print(json.dumps({"service": args.service, "requeued": count}))
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    from .dlq import redrive

    moved = asyncio.run(redrive(_settings(args.service), args.topic, limit=args.limit))
    print(json.dumps({"topic": args.topic, "redriven": moved}))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .auth import issue_token

    print(
        issue_token(
            Settings(),
            merchant_id=args.merchant,
            subject=args.subject,
            role=args.role,
            customer_id=args.customer,
            ttl_seconds=args.ttl,
        )
    )
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "api": cmd_api,
    "worker": cmd_worker,
    "scheduler": cmd_scheduler,
    "migrate": cmd_migrate,
    "replay": cmd_replay,
    "dlq-redrive": cmd_dlq_redrive,
    "token": cmd_token,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meadow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    api = sub.add_parser("api", help="serve a service's HTTP API")
    api.add_argument("service", choices=SERVICES)
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=8000)
    worker = sub.add_parser("worker", help="outbox relay + consumers + periodic jobs")
    worker.add_argument("service", choices=SERVICES)
    worker.add_argument(
        "--with-scheduler", action="store_true", help="also run the scheduler in this process"
    )
    worker.add_argument("--health-port", type=int, help="serve /healthz and /metrics on this port")
    scheduler = sub.add_parser("scheduler", help="a service's scheduler (content)")
    scheduler.add_argument("service", choices=SERVICES)
    scheduler.add_argument("--health-port", type=int, help="serve /healthz and /metrics on this port")
    migrate = sub.add_parser("migrate", help="alembic upgrade")
    migrate.add_argument("service", choices=SERVICES)
    migrate.add_argument("--revision", default="head")
    replay = sub.add_parser("replay", help="re-publish the outbox rows created in [since, until)")
    replay.add_argument("service", choices=SERVICES)
    replay.add_argument("--since", type=datetime.fromisoformat, required=True)
    replay.add_argument("--until", type=datetime.fromisoformat, required=True)
    redrive = sub.add_parser("dlq-redrive", help="move <topic>.dlq back onto <topic>")
    redrive.add_argument("topic")
    redrive.add_argument("--service", choices=SERVICES, required=True)
    redrive.add_argument("--limit", type=int)
    token = sub.add_parser("token", help="mint a development JWT (HS256 secret from JWT_SECRET)")
    token.add_argument("--merchant", default="demo-merchant")
    token.add_argument("--subject", default="demo-owner")
    token.add_argument(
        "--role", default="owner", choices=["owner", "operator", "support", "customer", "service"]
    )
    token.add_argument("--customer")
    token.add_argument("--ttl", type=int, default=86400)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
