"""Real servers for tests: a session-wide Postgres and broker, fresh databases and topics on demand.

Each service's migrations run once per session into a template database; every test module then gets
`CREATE DATABASE … TEMPLATE …`, a copy in tens of milliseconds. Topics are isolated per test module by
a name prefix, so modules sharing the broker never see each other's messages.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg

from meadow_contracts import ALL_TOPICS

from ..migrations import upgrade
from ..settings import Settings

T = TypeVar("T")


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run async setup from sync fixtures, on a private loop in a thread (no running loop is disturbed)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _plain(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@dataclass
class Infrastructure:
    admin_url: str
    bootstrap_servers: str
    _stop: list[Any] = field(default_factory=list)
    _templates: dict[Path, str] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _fresh: list[str] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: f"r{os.getpid()}")

    @classmethod
    def start(cls) -> Infrastructure:
        """Use DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS when set, otherwise start our own servers."""
        from meadow_devstack.servers import PostgresServer, TansuBroker

        stops: list[Any] = []
        root = Path(tempfile.mkdtemp(prefix="meadow-test-"))
        root.chmod(0o755)
        stops.append(lambda: shutil.rmtree(root, ignore_errors=True))
        admin_url = os.environ.get("DATABASE_URL")
        if admin_url:
            admin_url = _with_database(admin_url, "postgres")
        else:
            postgres = PostgresServer(root / "pg")
            postgres.start()
            stops.insert(0, postgres.stop)
            admin_url = postgres.admin_url
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = TansuBroker(root / "tansu.log")
            broker.start()
            stops.insert(0, broker.stop)
            bootstrap = broker.bootstrap_servers
        return cls(admin_url=admin_url, bootstrap_servers=bootstrap, _stop=stops)

    def stop(self) -> None:
        for stop in self._stop:
            stop()

    def _admin(self, sql: str) -> None:
        with psycopg.connect(_plain(self.admin_url), autocommit=True) as conn:
            conn.execute(sql.encode())  # identifiers are ours, never user input

    def _next_name(self, stem: str) -> str:
        return f"{stem}_{self.run_id}_{next(self._counter)}"

    def template_for(self, migrations_dir: Path) -> str:
        with self._lock:
            if migrations_dir not in self._templates:
                name = self._next_name(f"tmpl_{migrations_dir.parent.name}")
                self._admin(f'CREATE DATABASE "{name}"')
                upgrade(migrations_dir, _with_database(self.admin_url, name))
                self._templates[migrations_dir] = name
            return self._templates[migrations_dir]

    def fresh_database(self, migrations_dir: Path | None, stem: str = "db") -> str:
        """A new database at the migrations' head (or empty, without migrations); returns its URL."""
        name = self._next_name(stem)
        if migrations_dir is None:
            self._admin(f'CREATE DATABASE "{name}"')
        else:
            self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template_for(migrations_dir)}"')
        with self._lock:
            self._fresh.append(name)
        return "postgresql+asyncpg://" + _with_database(self.admin_url, name).split("://", 1)[1]

    def drop_database(self, url: str) -> None:
        """Drop a database made by `fresh_database`: a benchmark's leftovers (dirty pages in shared
        buffers, WAL towards the next checkpoint) then cost the measurements after it nothing."""
        name = urlsplit(url).path.lstrip("/")
        self._drop(name)
        with self._lock:
            if name in self._fresh:
                self._fresh.remove(name)

    def drop_fresh_databases(self) -> None:
        """Drop every database `fresh_database` made that is still there (the templates stay)."""
        with self._lock:
            names, self._fresh = self._fresh, []
        for name in names:
            self._drop(name)

    def _drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # its connections are ended

    def fresh_topics(self, topics: Iterable[str] = ALL_TOPICS, partitions: int = 4) -> str:
        """Create the topics under a new prefix and return the prefix."""
        from meadow_devstack.provision import create_topics

        prefix = self._next_name("t") + "."
        run_coroutine(create_topics(self.bootstrap_servers, [prefix + t for t in topics], partitions))
        return prefix

    def settings(self, service: str, migrations_dir: Path | None, **overrides: Any) -> Settings:
        """Settings for one service under test: its own fresh database, its own topic prefix."""
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": self.fresh_database(migrations_dir, stem=service),
            "kafka_bootstrap_servers": self.bootstrap_servers,
            "kafka_topic_prefix": self.fresh_topics(),
            "otel_traces_exporter": "memory",
            "outbox_poll_interval_seconds": 0.2,
            "log_level": "WARNING",
            # A consumer group forms in about a second instead of five: tests start many groups.
            "kafka_session_timeout_ms": 2000,
            "kafka_heartbeat_interval_ms": 300,
            "kafka_rebalance_timeout_ms": 2000,
        }
        values.update(overrides)
        return Settings(**values).for_service(service)
