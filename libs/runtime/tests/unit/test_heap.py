import gc

from meadow_runtime.heap import YOUNG_GENERATION_THRESHOLD, freeze_startup_heap, tune_heap_for_batches


def test_apis_freeze_their_start_up_heap_and_keep_the_default_collection_steps() -> None:
    before = gc.get_threshold()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0, "what was loaded at start-up is no longer rescanned"
        assert gc.get_threshold() == before
    finally:
        gc.unfreeze()


def test_batch_processes_collect_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        assert tune_heap_for_batches() == before
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
