"""``tradex run accounts``: one account processor, a member of the ``accounts`` group.

    tradex run accounts --instance a            # runs until SIGINT/SIGTERM
    tradex run accounts --instance b            # a second member: partitions are shared
    tradex run accounts --exit-when-idle 5      # catch up, exit after 5 s without input

``--instance`` must be stable across restarts and unique among running members: it names
the transactional.id (a restart fences its predecessor and aborts its open transaction at
once) and the static group membership.
"""

from __future__ import annotations

import argparse
import logging

from tradex.commands.processor import SNAPSHOT_EVENTS_DEFAULT, AccountProcessor
from tradex.commands.reference_table import ReferenceFollower
from tradex.infra import settings as settings_module
from tradex.infra.cli_args import non_negative_int, positive_int
from tradex.infra.settings import Settings
from tradex.infra.stage import (
    TransactionalStage,
    batch_records_max,
    configure_service_logging,
    run_until_signalled,
)
from tradex.log.source import KafkaLog
from tradex.log.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNTS_GROUP,
    PARTITIONS_MAX,
    SETTLEMENTS,
    ensure_account_topics,
)
from tradex.schemas.remote import codec_from_settings

log = logging.getLogger("tradex.accounts")

# None: batches adapt to load (tradex.infra.stage): a batch is what arrived while the
# previous transaction committed. A number: the fixed mode (each batch waits up to that
# many ms to fill after its first record), kept for comparison.
BATCH_WAIT_MS_DEFAULT: int | None = None


def build(
    settings: Settings,
    *,
    instance: str,
    partitions: int,
    batch_records: int = batch_records_max,
    batch_wait_ms: int | None = BATCH_WAIT_MS_DEFAULT,
    snapshot_events: int = SNAPSHOT_EVENTS_DEFAULT,
    use_snapshots: bool = True,
    compiled: bool = True,
) -> tuple[TransactionalStage, AccountProcessor]:
    """Topics created if missing, then the stage and its processor (not running yet);
    ``compiled=False``: every record decided by the Python domain (the compiled path's twin)."""
    ensure_account_topics(settings, partitions)
    codec = codec_from_settings(settings)
    follower = ReferenceFollower(KafkaLog(settings, bulk=False), codec)
    processor = AccountProcessor(
        settings,
        codec,
        follower,
        partitions=partitions,
        producer=f"accounts/{instance}",
        snapshot_events=snapshot_events,
        use_snapshots=use_snapshots,
        compiled=compiled,
    )
    stage = TransactionalStage(
        settings,
        group_id=settings.topic(ACCOUNTS_GROUP),
        input_topics=[settings.topic(ACCOUNT_COMMANDS), settings.topic(SETTLEMENTS)],
        processor=processor,
        transactional_id=settings.topic(f"accounts-{instance}"),
        batch_records=batch_records,
        batch_wait_ms=batch_wait_ms,
    )
    return stage, processor


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tradex run accounts", description=__doc__.split("\n")[0])
    parser.add_argument("--instance", default="0", help="stable, unique member name (default 0)")
    parser.add_argument(
        "--partitions", type=positive_int, default=None,
        help="partitions of the account topics (default TRADEX_TOPIC_PARTITIONS)",
    )  # fmt: skip
    parser.add_argument(
        "--exit-when-idle", type=float, default=None, metavar="S",
        help="exit after S seconds without input (catch-up runs, tests)",
    )  # fmt: skip
    parser.add_argument("--batch-records", type=positive_int, default=batch_records_max)
    parser.add_argument(
        "--batch-wait-ms", type=non_negative_int, default=BATCH_WAIT_MS_DEFAULT, metavar="MS",
        help="fixed batches: wait up to MS for a batch to fill (default: adaptive batches)",
    )  # fmt: skip
    parser.add_argument(
        "--snapshot-events", type=non_negative_int, default=SNAPSHOT_EVENTS_DEFAULT,
        help="events of a partition between snapshots; 0: never write snapshots",
    )  # fmt: skip
    parser.add_argument(
        "--no-snapshots", action="store_true", help="rebuild from the whole event log"
    )
    parser.add_argument(
        "--python-domain", action="store_true",
        help="decide every record with the Python domain (the compiled path's twin)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.partitions is not None and args.partitions > PARTITIONS_MAX:
        parser.error(f"--partitions must be <= {PARTITIONS_MAX}")
    if args.batch_records > batch_records_max:
        parser.error(f"--batch-records must be <= {batch_records_max}")
    if args.exit_when_idle is not None and args.exit_when_idle <= 0:
        parser.error("--exit-when-idle must be > 0")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    configure_service_logging(f"accounts-{args.instance}")
    settings = settings_module.load()
    partitions = args.partitions or settings.topic_partitions
    stage, processor = build(
        settings,
        instance=args.instance,
        partitions=partitions,
        batch_records=args.batch_records,
        batch_wait_ms=args.batch_wait_ms,
        snapshot_events=args.snapshot_events,
        use_snapshots=not args.no_snapshots,
        compiled=not args.python_domain,
    )
    try:
        stats = run_until_signalled(stage, args.exit_when_idle)
    finally:
        processor.follower.close()
    print(
        f"accounts/{args.instance}: batches={stats.batches} in={stats.records_in} "
        f"out={stats.records_out} aborts={stats.aborts} {stats.summary()} "
        f"partitions={sorted(processor.partitions_seen)} {processor.stats}",
        flush=True,
    )
    return 0
