"""The auditor's status: the last ``tradex audit verify`` and the signed checkpoints.

    GET /tradex/v1/audit/status     (auditor, admin; read-only)

Bounded cost per request, never a scan of the log: the verify part is the summary the
last ``tradex audit verify`` of this stack and prefix stored (``record_audit``: when it
ran, OK or the violations per check and the first of them); the checkpoint part reads the
last two records of the ``checkpoints`` topic (the newest checkpoint and the one it links
to) and one watermark per chained partition. The answer is kept ``status_cache_s`` per
process, so a page refreshed by many auditors asks Kafka once per period.

What "verifies" means here: the newest checkpoint's Ed25519 signature checks with the
stack's public key, and it links to the previous checkpoint record (its ``prev`` is that
record's SHA-256 and its sequence number follows). Whether the log still hashes to every
signed Merkle root is the full check (``tradex audit checkpoint --check``, or ``tradex
audit verify --public-key``): a scan of the log, reported through the verify summary.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from tradex.audit.checkpoints import (
    PUBLIC_KEY_NAME,
    CheckpointError,
    SignedCheckpoint,
    expected_link,
    has_topic,
    key_dir,
    key_id,
    parse,
    read_public_key,
)
from tradex.infra.metrics_targets import audit_result_path
from tradex.infra.settings import Settings
from tradex.log.source import KafkaLog, LogSource
from tradex.log.topics import CHECKPOINTS
from tradex.queries import tradex_models as tm
from tradex.queries.auth import AUDITOR
from tradex.queries.routing import Call, Endpoint

TAG = "Audit (TradeX)"
status_cache_s = 5.0  # one answer per process for this long
streams_shown_max = 256  # chained partitions listed (a checkpoint may name more)
heads_shown_max = 16  # producers per partition listed
tail_offsets_max = 256  # offsets of the checkpoints topic read at most per status
_cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}


# -- the last verify run ---------------------------------------------------------------------


def last_verify(path: Path) -> dict[str, Any]:
    """The stored summary of the last ``tradex audit verify`` (``ran: false`` when none)."""
    try:
        found = json.loads(path.read_text())
        violations, time_s = int(found["violations"]), float(found["time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"ran": False, "time": None, "ok": None, "violations": None, "records": None,
                "counts": {}, "found": [], "notes": []}  # fmt: skip
    assert violations >= 0, violations
    ok = found.get("ok")
    return {
        "ran": True, "time": int(time_s * 1000),
        "ok": violations == 0 if ok is None else bool(ok) and violations == 0,
        "violations": violations, "records": found.get("records"),
        "counts": {str(k): int(v) for k, v in dict(found.get("counts") or {}).items()},
        "found": list(found.get("found") or [])[:20], "notes": list(found.get("notes") or [])[:20],
    }  # fmt: skip


# -- the checkpoints -------------------------------------------------------------------------


def _public_key(settings: Settings) -> tuple[bytes | None, str]:
    path = key_dir(settings) / PUBLIC_KEY_NAME
    if not path.is_file():
        return None, f"no public key at {path} (no checkpoint was ever signed on this stack)"
    try:
        return read_public_key(str(path)), ""
    except CheckpointError as exc:
        return None, str(exc)


def _stream(source: LogSource, stream: Any, log_ends: dict[tuple[str, int], int]) -> dict[str, Any]:
    place = (stream.topic, stream.partition)
    if place not in log_ends:
        log_ends[place] = source.watermarks(stream.topic, stream.partition)[1]
    log_end = log_ends[place]
    heads = sorted(stream.heads.items())[:heads_shown_max]
    return {
        "topic": stream.topic, "partition": stream.partition, "start": stream.start,
        "end": stream.end, "records": stream.records, "root": stream.root.hex(),
        "heads": [{"producer": p, "offset": o, "hash": h.hex()} for p, (o, h) in heads],
        "logEnd": log_end, "sinceCheckpoint": max(0, log_end - stream.end),
    }  # fmt: skip


def _linked(latest: SignedCheckpoint, previous: SignedCheckpoint | None, problem: str) -> str:
    """'' when ``latest`` links to ``previous`` (or is the first), else what is wrong."""
    c = latest.checkpoint
    seq, prev = expected_link(previous)
    if previous is None:
        if (c.seq, c.prev) == (seq, prev):
            return ""
        return problem or f"checkpoint {c.seq} has no readable previous checkpoint"
    if c.seq != seq:
        return f"sequence {previous.checkpoint.seq} then {c.seq}"
    if c.prev != prev:
        return f"checkpoint {c.seq} does not name the previous record's SHA-256"
    return ""


def _tail(source: LogSource, low: int, high: int) -> list[Any]:
    """The last two records of the checkpoints topic (fewer if it has fewer). Its offsets
    also hold transaction markers, so the window widens until two records are in it, up to
    ``tail_offsets_max`` offsets."""
    window = 4
    while True:
        start = max(low, high - window)
        records = list(source.read(CHECKPOINTS, 0, start, high))[-2:]
        if len(records) == 2 or start == low or window >= tail_offsets_max:
            return records
        window *= 4


def checkpoint_status(source: LogSource, settings: Settings) -> dict[str, Any]:
    """The newest checkpoint and whether it verifies (two records and a watermark per
    chained partition read, whatever the log's size)."""
    public_key, key_problem = _public_key(settings)
    status: dict[str, Any] = {
        "topic": source_topic(settings), "checkpoints": 0, "latest": None,
        "publicKeyId": None if public_key is None else key_id(public_key),
        "problem": key_problem or None,
    }  # fmt: skip
    if not has_topic(source, CHECKPOINTS):
        status["problem"] = "no checkpoints topic: no checkpoint was written"
        return status
    low, high = source.watermarks(CHECKPOINTS, 0)
    assert 0 <= low <= high, (low, high)
    records = _tail(source, low, high)
    if not records:
        status["problem"] = "no checkpoint yet"
        return status
    newest = records[-1]
    try:
        latest = parse(newest.value, newest.offset)
    except CheckpointError as exc:
        status["problem"] = f"the newest record (offset {newest.offset}) is {exc}"
        return status
    previous, previous_problem = None, ""
    if len(records) == 2:
        try:
            previous = parse(records[0].value, records[0].offset)
        except CheckpointError as exc:
            previous_problem = f"the previous record (offset {records[0].offset}) is {exc}"
    c = latest.checkpoint
    status["checkpoints"] = c.seq + 1  # numbered from 0 (a gap shows as a broken link)
    signature_ok = None if public_key is None else latest.signature_ok(public_key)
    link_problem = _linked(latest, previous, previous_problem)
    log_ends: dict[tuple[str, int], int] = {}
    streams = [_stream(source, s, log_ends) for s in c.streams[:streams_shown_max]]
    status["latest"] = {
        "seq": c.seq, "offset": latest.offset, "createdTime": c.created_ms, "keyId": c.key_id,
        "signatureOk": signature_ok, "linked": not link_problem,
        "linkProblem": link_problem or None,
        "verifies": bool(signature_ok) and not link_problem,
        "records": sum(s.records for s in c.streams), "streams": streams,
        "streamCount": len(c.streams),
    }  # fmt: skip
    return status


def source_topic(settings: Settings) -> str:
    return settings.topic(CHECKPOINTS)


def _read_status(settings: Settings) -> dict[str, Any]:
    verify = last_verify(audit_result_path(settings))
    try:
        with KafkaLog(settings, bulk=False) as source:
            checkpoints = checkpoint_status(source, settings)
    except Exception as exc:  # Kafka down or unreadable: said, the verify part still shown
        checkpoints = {"topic": source_topic(settings), "checkpoints": 0, "publicKeyId": None,
                       "latest": None, "problem": f"the log cannot be read: {exc}"}  # fmt: skip
    return {"verify": verify, "checkpoints": checkpoints}


async def status(call: Call) -> dict[str, Any]:
    """The last ``tradex audit verify`` (when, OK or which violations) and the newest signed
    checkpoint (its chain heads, whether its signature and link verify, how far the log has
    gone since). Cached a few seconds; reads no more than the checkpoints topic's tail."""
    settings = call.services.settings
    key = (str(settings.stack_dir), settings.topic_prefix or "")
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and now - cached[0] < status_cache_s:
        return cached[1]
    found = await asyncio.to_thread(_read_status, settings)
    found["readTime"] = call.services.clock_ns() // 1_000_000
    _cache[key] = (now, found)
    return found


ENDPOINTS = [
    Endpoint("GET", "/tradex/v1/audit/status", status, "The last audit and checkpoint", TAG,
             response=tm.AuditStatus, access=AUDITOR, weight=5),
]  # fmt: skip
