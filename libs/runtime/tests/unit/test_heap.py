import gc
import weakref

from meadow_runtime.heap import freeze_startup_heap, worker_collector
from meadow_runtime.testing.kafka import eventually


def test_apis_freeze_their_start_up_heap_and_keep_the_default_collection_steps() -> None:
    before = gc.get_threshold()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0, "what was loaded at start-up is no longer rescanned"
        assert gc.get_threshold() == before
    finally:
        gc.unfreeze()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_workers_collect_on_a_clock_not_on_allocations() -> None:
    was_enabled = gc.isenabled()
    async with worker_collector(every=0.05):
        assert not gc.isenabled(), "no pass triggered by allocations"
        assert gc.get_freeze_count() > 0, "what exists at start is never walked"
        cycle = _Cycle()
        freed = weakref.ref(cycle)
        del cycle
        assert freed() is not None, "only the collector frees a cycle"

        async def still_there() -> bool:
            return freed() is not None

        await eventually(still_there, until=lambda alive: not alive, timeout=10)
    assert gc.isenabled() == was_enabled
    assert gc.get_freeze_count() == 0
