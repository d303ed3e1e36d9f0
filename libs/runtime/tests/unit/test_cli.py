import gc

from meadow_runtime.cli import (
    COMMANDS,
    YOUNG_GENERATION_THRESHOLD,
    build_parser,
    freeze_startup_heap,
    tune_heap_for_batches,
)


def test_workers_and_schedulers_can_serve_health_and_metrics() -> None:
    parser = build_parser()
    worker = parser.parse_args(["worker", "rewards", "--health-port", "9000"])
    assert (worker.command, worker.service, worker.health_port) == ("worker", "rewards", 9000)
    scheduler = parser.parse_args(["scheduler", "content", "--health-port", "9001"])
    assert scheduler.health_port == 9001
    assert parser.parse_args(["worker", "content"]).health_port is None


def test_every_subcommand_has_a_handler() -> None:
    parser = build_parser()
    for argv in (
        ["api", "membership", "--port", "8001"],
        ["worker", "segments", "--with-scheduler"],
        ["migrate", "content"],
        ["replay", "rewards", "--since", "2026-01-01T00:00:00+00:00", "--until", "2026-01-02T00:00:00+00:00"],
        ["dlq-redrive", "commerce.orders", "--service", "rewards"],
        ["token", "--role", "support"],
    ):
        assert parser.parse_args(argv).command in COMMANDS


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
