from meadow_runtime.cli import COMMANDS, build_parser


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
