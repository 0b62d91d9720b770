"""``tradex audit verify`` on real Kafka: a clean log passes, a tampered one is located."""

from __future__ import annotations

import functools
import gc
import json
from typing import Any

import pytest

from tests.audit.tamper import CODEC, Tampered
from tests.projections.exchange import Exchange
from tradex.audit import checkpoints, cli
from tradex.audit.cli import kafka_and_codec
from tradex.audit.rerun import RerunStopped, start_rerun_thread
from tradex.audit.verify import Report, _checkpoints, audited_ends, verify
from tradex.audit.violations import Violation
from tradex.log.source import KafkaLog
from tradex.log.topics import ACCOUNT_EVENTS, ENGINE_EVENTS, ORDER_REQUESTS, SETTLEMENTS

pytestmark = pytest.mark.integration

_reports: dict[str, Report] = {}


def _report(settings: Any) -> Report:
    found = _reports.get(settings.topic_prefix)
    if found is None:
        with KafkaLog(settings) as log:
            found = _reports[settings.topic_prefix] = verify(log, CODEC, progress=False)
    return found


def _the_one_named(
    tampered: Tampered, report: Report, check: str, message: str, topic: str
) -> dict[str, Any]:
    """The record of the one violation of ``check`` with ``message``, on ``topic``, decoded."""
    found = [v for v in report.violations if v.check == check and v.message == message]
    assert len(found) == 1, report.text()
    assert found[0].topic == topic
    with KafkaLog(tampered.settings) as log:
        (record,) = log.read(topic, found[0].partition, found[0].offset, found[0].offset + 1)
    decoded: dict[str, Any] = CODEC.decode(record.value or b"").record
    return decoded


def _at(report: Report, check: str, place: tuple[str, int, int, Any]) -> list[Violation]:
    topic, partition, offset, _what = place
    return [
        v for v in report.violations
        if v.check == check and (v.topic, v.partition, v.offset) == (topic, partition, offset)
    ]  # fmt: skip


def test_a_clean_log_passes_every_check(audit_exchange: Exchange) -> None:
    report = _report(audit_exchange.settings)
    assert report.ok, report.text()
    assert report.violations == []
    assert report.trades is not None and report.trades.trades > 50, "the log has trades"
    assert report.trades.fills_settled == 2 * report.trades.trades
    assert report.ledger is not None and report.ledger.entries > 100
    assert report.rerun is not None and report.rerun.inputs > 100
    assert report.chains >= 2 + 1 + 2 + 1, (
        "account, engine (one instrument), settlements, reference"
    )
    for check in ("chain", "journal_balanced", "fee", "fill_leg", "fill_settled", "rerun",
                  "hold_released", "amend_settled", "settlement_rejected"):  # fmt: skip
        assert check in report.counts and report.counts[check] == 0


def test_the_copy_keeps_the_offsets_the_rerun_needs(tampered: Tampered) -> None:
    assert tampered.offsets_kept[ORDER_REQUESTS], "the re-run's event ids need these offsets"
    assert set(tampered.places) == {
        "unbalanced", "negative", "fee", "missing_leg", "broken_chain", "engine",
        "maker_checker", "admin_actor", "amend_settled",
    }  # fmt: skip


def test_an_unbalanced_entry_is_named(tampered: Tampered) -> None:
    report = _report(tampered.settings)
    assert not report.ok
    found = _at(report, "journal_balanced", tampered.places["unbalanced"])
    assert found, report.text()
    assert "unbalanced in" in found[0].message and "sums to 1" in found[0].message
    assert found[0].event_id, "the violation names the event id"


def test_a_withdrawal_decided_by_its_maker_is_named(tampered: Tampered) -> None:
    report = _report(tampered.settings)
    found = _at(report, "maker_checker", tampered.places["maker_checker"])
    assert found, report.text()
    withdrawal = tampered.places["maker_checker"][3]
    assert f"withdrawal {withdrawal} " in found[0].message and "by user 90" in found[0].message
    assert report.counts["maker_checker"] == 1


def test_a_deposit_by_a_user_never_admin_is_named(tampered: Tampered) -> None:
    report = _report(tampered.settings)
    found = _at(report, "admin_actor", tampered.places["admin_actor"])
    assert found, report.text()
    assert found[0].message.startswith("Deposited by user 91, who never had the admin role")
    assert report.counts["admin_actor"] == 1  # the maker/checker damage's actor is an admin


def test_a_negative_balance_is_named(tampered: Tampered) -> None:
    report = _report(tampered.settings)
    topic, partition, offset, account = tampered.places["negative"]
    found = [
        v for v in report.violations
        if v.check == "negative_balance" and f"account {account} available USD" in v.message
    ]  # fmt: skip
    assert found, report.text()
    assert (found[0].topic, found[0].partition) == (topic, partition)
    assert found[0].offset > offset, "after the cut deposit, where the balance went below 0"


def test_a_fee_off_by_one_minor_unit_is_named(tampered: Tampered) -> None:
    report = _report(tampered.settings)
    found = _at(report, "fee", tampered.places["fee"])
    assert any(v.message.startswith("fee is ") for v in found), report.text()
    assert not _at(report, "journal_balanced", tampered.places["fee"]), "still balanced"


def test_an_amend_settled_and_an_amend_confirmed_unpaired_are_both_named(
    tampered: Tampered,
) -> None:
    """The AmendSettled now names an amend time no AmendConfirmed has: it is named, and so
    is the engine's AmendConfirmed it settled (on ``settlements``), nothing else of it."""
    report = _report(tampered.settings)
    place = tampered.places["amend_settled"]
    order_id, amend_time_ns = place[3]
    found = _at(report, "amend_settled", place)
    assert [v.message for v in found] == ["an AmendSettled with no AmendConfirmed"], report.text()
    engine_side = _the_one_named(
        tampered, report, "amend_settled", "the AmendConfirmed has no AmendSettled", SETTLEMENTS
    )
    assert (engine_side["order_id"], engine_side["amend_time_ns"]) == (order_id, amend_time_ns)
    assert report.counts["amend_settled"] == 2
    assert not any(v.offset == place[2] and v.topic == place[0] and v.partition == place[1]
                   for v in report.violations if v.check.startswith("hold")), "holds untouched"  # fmt: skip


def test_a_missing_fill_leg_is_named_at_its_trade(tampered: Tampered) -> None:
    report = _report(tampered.settings)
    trade_id, liquidity = tampered.places["missing_leg"][3]
    side = "maker" if liquidity == "MAKER" else "taker"
    trade = _the_one_named(
        tampered, report, "fill_leg", f"the trade has no {side} FillLeg", ENGINE_EVENTS
    )
    assert trade["trade_id"] == trade_id


def test_a_broken_chain_is_named(tampered: Tampered) -> None:
    report = _report(tampered.settings)
    found = _at(report, "chain", tampered.places["broken_chain"])
    assert found and "hash does not match" in found[0].message, report.text()
    chain_places = {
        (v.topic, v.partition, v.offset) for v in report.violations if v.check == "chain"
    }
    assert chain_places == {tampered.places["broken_chain"][:3]}, "re-sealed edits pass the chain"


def test_a_changed_engine_event_is_named_by_the_rerun(tampered: Tampered) -> None:
    report = _report(tampered.settings)
    found = _at(report, "rerun", tampered.places["engine"])
    assert found and "different record" in found[0].message, report.text()
    assert found[0].topic == ENGINE_EVENTS


def test_the_command_exits_1_with_json_naming_the_records(
    tampered: Tampered, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["verify", "--topic-prefix", tampered.settings.topic_prefix, "--json",
                       "--no-rerun"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert status == 1
    assert out["ok"] is False
    checks = {v["check"] for v in out["violations"]}
    assert {"journal_balanced", "fee", "fill_leg", "chain", "negative_balance"} <= checks
    assert all(v["topic"] in (ACCOUNT_EVENTS, ENGINE_EVENTS, "settlements") or v["offset"] == -1
               for v in out["violations"])  # fmt: skip


def test_the_command_exits_0_on_the_clean_log(
    audit_exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["verify", "--topic-prefix", audit_exchange.settings.topic_prefix])
    captured = capsys.readouterr()
    assert status == 0, captured.out
    assert "tradex audit verify: OK" in captured.out
    assert "records/s" in captured.err, "a progress line on stderr"


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["verify", "--orders-max", "0"])
    assert exc.value.code == 2
    assert cli.main(["nonsense"]) == 2


def test_the_rerun_in_a_child_process_judges_the_same(tampered: Tampered) -> None:
    settings = tampered.settings
    with KafkaLog(settings) as log:
        report = verify(
            log, CODEC, progress=False, reopen=functools.partial(kafka_and_codec, settings)
        )
    assert report.rerun is not None and report.rerun.inputs == _report(settings).rerun.inputs  # type: ignore[union-attr]
    found = _at(report, "rerun", tampered.places["engine"])
    assert found and "different record" in found[0].message, report.text()
    assert report.counts == _report(settings).counts


def test_the_rerun_after_the_checks_judges_as_the_one_beside_the_scan(tampered: Tampered) -> None:
    """``overlap=False`` (``--rerun-after``): the same findings, in the same order, as the
    default re-run on a thread beside the scan; the GC is back on afterwards."""
    settings = tampered.settings
    with KafkaLog(settings) as log:
        report = verify(log, CODEC, progress=False, overlap=False)
    beside = _report(settings)
    assert report.rerun is not None and beside.rerun is not None
    assert report.rerun.inputs == beside.rerun.inputs > 100
    assert report.rerun.outputs == beside.rerun.outputs
    assert report.counts == beside.counts
    assert report.violations == beside.violations
    found = _at(report, "rerun", tampered.places["engine"])
    assert found and "different record" in found[0].message, report.text()
    assert gc.isenabled()


def test_the_rerun_beside_the_scan_stops_when_asked(audit_exchange: Exchange) -> None:
    """When the audit fails, the thread's re-run stops at its next batch (RerunStopped)."""
    with KafkaLog(audit_exchange.settings) as log:
        _starts, ends, _notes = audited_ends(log)
        future, stop = start_rerun_thread(log, CODEC, ends, None)
        stop.set()
        with pytest.raises(RerunStopped):
            future.result(timeout=120)


def test_the_checkpoint_check_runs_with_a_public_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tradex.audit.checkpoints`` plugs in through one function, given a public key."""
    calls: list[tuple[object, object]] = []

    def check_checkpoints(source: object, public_key: object, report: Report) -> None:
        calls.append((source, public_key))
        report.violations.append(Violation("checkpoint", "checkpoints", 0, 3, "", "forged"))

    report = Report({})
    _checkpoints(None, None, report)  # type: ignore[arg-type]
    assert report.ok and "not checked" in report.notes[0]
    monkeypatch.setattr(checkpoints, "check_checkpoints", check_checkpoints)
    _checkpoints("the source", b"key", report)  # type: ignore[arg-type]
    assert calls == [("the source", b"key")]
    assert not report.ok and report.counts["checkpoint"] == 1


def test_a_missing_archive_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["verify", "--archive", "/nonexistent"]) == 2
    assert "/nonexistent: no such directory" in capsys.readouterr().err


def test_no_log_at_all_is_an_error_not_a_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["verify", "--topic-prefix", "no-such-exchange-", "--no-progress"]) == 2
    assert "no log here" in capsys.readouterr().err
