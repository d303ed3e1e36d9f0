"""`make bench`: start the real servers once, run every `bench_*.py` (raw limits first), print a table.

`python bench/run.py [name ...]` runs only the named benchmarks (raw limits always run first).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import tempfile
from pathlib import Path

from harness import BenchContext
from meadow_runtime.testing.infrastructure import Infrastructure

BENCH_DIR = Path(__file__).resolve().parent


def discover(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    modules = [importlib.import_module(n) for n in names]
    ordered = [m.__name__ for m in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))]
    if selected:
        ordered = [n for n in ordered if n == "bench_raw_limits" or n.removeprefix("bench_") in selected]
    return ordered


async def main(selected: list[str]) -> int:
    infra = Infrastructure.start()
    ctx = BenchContext(infra=infra)
    print(f"{'benchmark':<44} {'value':>14} {'unit':<10} ratio", flush=True)
    try:
        for name in discover(selected):
            print(f"--- {name.removeprefix('bench_')}", flush=True)
            await importlib.import_module(name).run(ctx)
            # The next benchmark starts on an equal footing: no earlier database's dirty pages to evict,
            # no WAL of theirs bringing the next checkpoint nearer.
            infra.drop_fresh_databases()
    finally:
        infra.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="meadow-xdg-"))
    sys.path.insert(0, str(BENCH_DIR))
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
