"""``tradex run reference``: the reference-data processor (one active member).

    tradex run reference                       # runs until SIGINT/SIGTERM
    tradex run reference --exit-when-idle 5    # catch up, exit after 5 s without input

A second instance (another ``--instance``) joins the same group as a standby: the topics
have one partition, so it takes over only when the active one leaves or dies.
"""

from __future__ import annotations

import argparse
import logging

from tradex.commands.reference_processor import ReferenceProcessor
from tradex.infra import settings as settings_module
from tradex.infra.settings import Settings
from tradex.infra.stage import TransactionalStage, configure_service_logging, run_until_signalled
from tradex.log.topics import REFERENCE_COMMANDS, REFERENCE_GROUP, ensure_reference_topics
from tradex.schemas.remote import codec_from_settings

log = logging.getLogger("tradex.reference")


def build(settings: Settings, instance: str) -> tuple[TransactionalStage, ReferenceProcessor]:
    ensure_reference_topics(settings)
    processor = ReferenceProcessor(settings, codec_from_settings(settings), f"reference/{instance}")
    stage = TransactionalStage(
        settings,
        group_id=settings.topic(REFERENCE_GROUP),
        input_topics=[settings.topic(REFERENCE_COMMANDS)],
        processor=processor,
        transactional_id=settings.topic(f"reference-{instance}"),
        batch_records=1_000,
    )
    return stage, processor


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex run reference", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--instance", default="0", help="stable, unique member name (default 0)")
    parser.add_argument("--exit-when-idle", type=float, default=None, metavar="S")
    args = parser.parse_args(argv)
    if args.exit_when_idle is not None and args.exit_when_idle <= 0:
        parser.error("--exit-when-idle must be > 0")
    configure_service_logging(f"reference-{args.instance}")
    stage, processor = build(settings_module.load(), args.instance)
    stats = run_until_signalled(stage, args.exit_when_idle)
    print(
        f"reference/{args.instance}: batches={stats.batches} in={stats.records_in} "
        f"decided={processor.decided} duplicates={processor.duplicates} "
        f"dead_letters={processor.dead_letters}",
        flush=True,
    )
    return 0
