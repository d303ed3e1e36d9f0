"""The benchmark harness: real servers, the raw limits measured first, every figure printed beside them.

Each `bench/bench_*.py` module defines `async def run(ctx: BenchContext) -> None` and reports its
figures with `ctx.report(...)`, naming the raw limit (or its own in-run baseline) it compares against.
Numbers are never asserted: they are printed, as ratios, for people to read.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meadow_runtime.consumer import ConsumerRunner
from meadow_runtime.testing.infrastructure import Infrastructure


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: str
    note: str = ""


@dataclass
class BenchContext:
    infra: Infrastructure
    quick: bool = field(default_factory=lambda: os.environ.get("BENCH_QUICK") == "1")
    results: dict[str, Measurement] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def scale(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def report(self, measurement: Measurement, *, against: str | None = None) -> Measurement:
        self.results[measurement.name] = measurement
        ratio = ""
        if against is not None and against in self.results:
            base = self.results[against]
            if base.value:
                ratio = f"{measurement.value / base.value:8.3f}× {against}"
        line = f"{measurement.name:<44} {measurement.value:>14,.1f} {measurement.unit:<10} {ratio}"
        if measurement.note:
            line += f"  ({measurement.note})"
        self.lines.append(line)
        print(line, flush=True)
        return measurement


class CpuMeter:
    """CPU seconds spent inside the block by this process (the worker, in the consumer benchmarks) and by
    every Postgres process on the machine, read from Linux's /proc.

    On a shared machine, events/s is bounded by whichever of the two runs out of cores first; the CPU
    each spends per event says what a worker would sustain with Postgres on machines of its own.
    """

    def __enter__(self) -> CpuMeter:
        self._worker, self._postgres = time.process_time(), _postgres_cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker_seconds = time.process_time() - self._worker
        self.postgres_seconds = _postgres_cpu_seconds() - self._postgres


def _postgres_cpu_seconds() -> float:
    """User + system time of the running processes named `postgres` (backends that exit in between are
    missed; the service's pooled connections live through a benchmark)."""
    ticks = 0
    for stat in os.scandir("/proc"):
        if not stat.name.isdigit():
            continue
        try:
            with open(f"/proc/{stat.name}/stat") as file:
                content = file.read()
        except OSError:  # exited since the listing
            continue
        name_end = content.rindex(")")
        if content[content.index("(") + 1 : name_end] != "postgres":
            continue
        fields = content[name_end + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def percentile(samples: list[float], pct: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


async def consume_concurrently(runners: Sequence[ConsumerRunner[Any]], total: int) -> tuple[float, int]:
    """Poll every runner at once, as a worker's consumers do, until together they have handled `total`.

    Returns the seconds and the events handled in the timed window (joining the group may already have
    handled a batch or two, which are not counted).
    """
    await asyncio.gather(*(runner.wait_until_assigned() for runner in runners))

    def handled() -> int:
        return sum(runner.handled for runner in runners)

    async def poll(runner: ConsumerRunner[Any]) -> None:
        while handled() < total:
            await runner.poll_once(timeout_ms=200)

    before = handled()
    with Stopwatch() as watch:
        await asyncio.gather(*(poll(runner) for runner in runners))
    return watch.seconds, handled() - before
