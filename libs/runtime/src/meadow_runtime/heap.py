"""How a Meadow process sets up its garbage collector once everything is loaded.

APIs and batch processes (workers, schedulers) want different things: see each function.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

# In a batch process the collector runs on a clock, not on allocations. CPython's collector starts a pass
# every 700 net allocations, and each pass walks every object allocated since the last one that is still
# alive. A worker keeps much of what it allocates for a while (the batch in hand, segments' kept facts),
# and the passes walked it again and again: 14% of the segments worker's CPU in `make bench` even at a
# pass every 50,000 allocations. Reference counting frees everything but cycles, and the consumers make
# none in their steady state (none per batch on segments' order path, measured), so a full pass now and
# then frees what cycles there are (a failure's traceback, say) soon enough.
WORKER_COLLECT_EVERY_SECONDS = 60.0


def freeze_startup_heap() -> None:
    """Keep the garbage collector from re-scanning everything loaded at start-up, on every full pass.

    Imported modules, schemas and compiled SQL are hundreds of thousands of long-lived objects; a busy
    consumer or API allocates fast enough to trigger full collections that walk all of them (measured:
    ~15% of an ingest batch). Frozen objects are simply skipped; nothing is ever freed that would not be.
    """
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def worker_collector(every: float = WORKER_COLLECT_EVERY_SECONDS) -> AsyncIterator[None]:
    """The garbage collector as a batch process (worker, scheduler) runs it, for the duration: what exists
    so far frozen out of every pass (`freeze_startup_heap`), no pass on allocations, and a full pass
    every `every` seconds. Not for APIs, which want their requests' garbage collected in small steps: one
    rare large collection is a pause in some request's latency."""
    freeze_startup_heap()
    was_enabled = gc.isenabled()
    gc.disable()

    async def collect_on_a_clock() -> None:
        while True:
            await asyncio.sleep(every)  # a schedule, not synchronisation
            gc.collect()

    collector = asyncio.create_task(collect_on_a_clock(), name="garbage-collector")
    try:
        yield
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        if was_enabled:
            gc.enable()
        gc.unfreeze()
