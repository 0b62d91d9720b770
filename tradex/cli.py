"""The `tradex` command: one entry point, each subcommand owned by the module that implements it.

Every target module exposes ``main(argv: list[str]) -> int`` and parses its own arguments
with argparse (a bad argument prints a clear error and exits 2, changing nothing).
Modules are imported lazily so `tradex stack status` does not pay for Numba or Kafka imports.
"""

from __future__ import annotations

import importlib
import sys

# (words, module): the longest matching prefix of argv wins.
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("demo",): ("tradex.demo", "the main job: a live exchange, a market on it, the audit"),
    ("exchange",): ("tradex.infra.exchange", "the exchange's services left running: status | stop"),
    ("sim",): ("tradex.sim.cli", "seeded market simulation: agents trade via the command path"),
    ("stack",): ("tradex.infra.stack", "local stack: up | down | status | logs"),
    ("run", "accounts"): (
        "tradex.commands.service",
        "run an account processor (consumer group member)",
    ),
    ("run", "reference"): ("tradex.commands.reference_service", "run the reference-data processor"),
    ("run", "matcher"): (
        "tradex.matching.service",
        "run a matching engine (consumer group member)",
    ),
    ("run", "projector"): (
        "tradex.projections.service",
        "keep read models current: tradex run projector NAME [NAME...]",
    ),
    ("run", "api"): (
        "tradex.queries.service",
        "run the REST API (uvicorn): --host --port --workers",
    ),
    ("api", "create-user"): (
        "tradex.queries.users_cli",
        "a user (the first admin): --username --roles",
    ),
    ("api", "set-roles"): (
        "tradex.queries.roles_cli",
        "give a user exactly these roles (as the operator): --username --roles",
    ),
    ("projections",): ("tradex.projections.admin", "read models: status | rebuild | verify"),
    ("run", "checkpointer"): (
        "tradex.audit.checkpointer",
        "sign the chained streams' heads every N records (checkpoints topic)",
    ),
    ("audit", "checkpoint"): (
        "tradex.audit.checkpoint_cli",
        "write a signed checkpoint now, or --check them all",
    ),
    ("audit", "prove"): ("tradex.audit.proofs", "an inclusion proof of one event"),
    ("audit", "check-proof"): ("tradex.audit.proof_check", "check an inclusion proof offline"),
    ("export",): ("tradex.audit.export", "the log to an archive: Avro + Parquet + manifest"),
    ("replay",): ("tradex.audit.replay", "rebuild read models from an archive, no Kafka"),
    ("bench", "archive"): (
        "tradex.bench.archive",
        "checkpoint, export and archive reads of a market log vs Kafka reads",
    ),
    ("matching", "verify"): (
        "tradex.matching.verify",
        "re-run order-requests and compare engine-events",
    ),
    ("backtest",): (
        "tradex.backtest.cli",
        "re-run the engine over recorded order requests with changes; report vs history",
    ),
    ("schemas",): ("tradex.schemas.registry", "schema registry file: generate | check"),
    ("audit",): ("tradex.audit.cli", "auditors: verify | balances | statement | book"),
    ("bench", "backtest"): (
        "tradex.bench.backtest",
        "tradex backtest's replay speed vs the kernel alone on the same stream",
    ),
    ("bench", "domain"): (
        "tradex.bench.domain",
        "domain: plain aggregate vs eventsourcing Aggregate",
    ),
    ("bench", "codec"): (
        "tradex.bench.codec",
        "codec: tradex Avro codec vs confluent serializer",
    ),
    ("bench", "gen-stream"): ("tradex.bench.gen_stream", "write an order stream file"),
    ("bench", "replay"): ("tradex.bench.replay", "replay an order stream through one engine"),
    ("bench", "matching"): (
        "tradex.bench.matching",
        "matching benchmark: tradex vs liquibook and reference",
    ),
    ("bench", "ledger"): (
        "tradex.bench.ledger",
        "ledger benchmark: processors vs eventsourcing+Postgres",
    ),
    ("bench", "clickhouse"): (
        "tradex.bench.clickhouse",
        "ClickHouse read model: rebuild events/s and where the time goes",
    ),
    ("bench", "matcher-service"): (
        "tradex.bench.matcher_service",
        "the matcher alone on Kafka: order requests/s from a preloaded backlog",
    ),
    ("bench", "metrics"): (
        "tradex.bench.metrics_hooks",
        "the metrics' per-batch hooks: CPU per batch and per record",
    ),
    ("bench", "tracing"): (
        "tradex.bench.tracing",
        "what tracing costs a stage per record (CPU): off, on unsampled, on sampled",
    ),
    ("bench", "e2e"): (
        "tradex.bench.e2e",
        "order trips through the live pipeline vs the raw Kafka chain",
    ),
    ("bench", "projections"): (
        "tradex.bench.projections",
        "read models: rebuild speed per store vs eventsourcing, lag under load",
    ),
    ("bench", "audit"): (
        "tradex.bench.audit",
        "tradex audit verify over >= 1M events vs tradex matching verify",
    ),
    ("bench", "api"): (
        "tradex.bench.api",
        "the traders' API: reads, order acks, WebSocket fan-out vs a bare Starlette endpoint",
    ),
}


def usage() -> str:
    lines = ["usage: tradex COMMAND [ARGS...]", "", "commands:"]
    for words, (_, help_text) in COMMANDS.items():
        lines.append(f"  {' '.join(words):<20} {help_text}")
    return "\n".join(lines)


def resolve(argv: list[str]) -> tuple[str, list[str]] | None:
    """Return (module, remaining argv) for the longest registered prefix of argv."""
    for length in (2, 1):
        words = tuple(argv[:length])
        if len(words) == length and words in COMMANDS:
            return COMMANDS[words][0], argv[length:]
    return None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    found = resolve(args)
    if found is None:
        print(f"tradex: unknown command {' '.join(args[:2])!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, rest = found
    from tradex.infra.reachable import ServiceUnavailable

    _setup_logs(args[: len(args) - len(rest)])
    try:
        module = importlib.import_module(module_name)
        result: int = module.main(rest)
    except ServiceUnavailable as exc:  # the stack or a service is down: one line, exit 1
        print(f"tradex {' '.join(args[: len(args) - len(rest)])}: {exc}", file=sys.stderr)
        return 1
    return result


def _setup_logs(words: list[str]) -> None:
    """A command's log lines (librdkafka's among them) to the stack's log file, not the
    terminal; a service (``run ...``) sets its own up (tradex.observability.logs)."""
    from tradex.infra import settings as settings_module
    from tradex.observability import logs

    try:
        stack_dir = settings_module.load().stack_dir
    except ValueError:  # bad settings: the command itself says what is wrong
        return
    try:
        logs.setup("tradex " + " ".join(words), log_file=logs.command_log_file(stack_dir))
    except OSError as exc:  # e.g. a read-only stack dir: the command runs without its log
        print(f"tradex: no log file: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
