"""``tradex audit check-proof FILE --public-key K``: check an inclusion proof offline.

Needs the proof file and the operator's public key only — no log, no Kafka. Checks that:
the checkpoint (and the one before it) are signed by the key, the later one links to the
earlier one and its segment starts where the earlier one's ended; the record's bytes (at
its offset) hash to the leaf that the audit path takes to the segment's signed root; and
the record's own hash matches its content. Exit 0 when every check holds, 1 when one
fails (each named), 2 when the file is not a proof.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tradex.audit import merkle
from tradex.audit.checkpoints import CheckpointError, key_id, parse, read_public_key
from tradex.audit.links import link_problem
from tradex.schemas.chain import HASH_SIZE

PROOF_FORMAT = "tradex-inclusion-proof"
PROOF_VERSION = 1


class ProofError(ValueError):
    """The proof cannot be made (no such event, not yet checkpointed) or read."""


def load(path: Path) -> dict[str, Any]:
    try:
        proof = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProofError(f"{path}: unreadable ({exc})") from None
    if not isinstance(proof, dict) or proof.get("format") != PROOF_FORMAT:
        raise ProofError(f"{path}: not a TradeX inclusion proof")
    if proof.get("version") != PROOF_VERSION:
        raise ProofError(
            f"{path}: proof version {proof.get('version')!r}, expected {PROOF_VERSION}"
        )
    return proof


def check_proof(proof: dict[str, Any], public_key: bytes) -> list[str]:
    """The reasons ``proof`` does not prove its record's inclusion (empty: it does)."""
    try:
        record = proof["record"]
        place = (str(record["topic"]), int(record["partition"]))
        offset = int(record["offset"])
        key = bytes.fromhex(record["key"]) if record["key"] is not None else None
        value = bytes.fromhex(record["value"]) if record["value"] is not None else None
        segment = proof["segment"]
        index, size = int(segment["index"]), int(segment["size"])
        path = [bytes.fromhex(h) for h in proof["path"]]
        signed = parse(proof["checkpoint"]["value"].encode(), int(proof["checkpoint"]["offset"]))
        before = proof.get("previous_checkpoint")
        previous = parse(before["value"].encode(), int(before["offset"])) if before else None
    except (KeyError, TypeError, ValueError, CheckpointError) as exc:
        return [f"malformed proof: {type(exc).__name__}: {exc}"]
    problems: list[str] = []
    for which in (signed, previous):
        if which is not None and not which.signature_ok(public_key):
            problems.append(f"checkpoint #{which.checkpoint.seq}: signature does not verify "
                            f"with key {key_id(public_key)}")  # fmt: skip
    stream = signed.checkpoint.stream(place)
    if stream is None:
        return [*problems, f"checkpoint #{signed.checkpoint.seq} does not cover {place}"]
    if previous is None:
        if signed.checkpoint.seq != 0 or stream.start != 0:
            problems.append("the previous checkpoint is missing from the proof")
    else:
        earlier = previous.checkpoint.stream(place)
        if (
            signed.checkpoint.seq != previous.checkpoint.seq + 1
            or signed.checkpoint.prev != previous.digest()
        ):
            problems.append(
                f"checkpoint #{signed.checkpoint.seq} does not follow checkpoint #{previous.checkpoint.seq}"
            )
        if earlier is not None and earlier.end != stream.start:
            problems.append(
                f"the segment starts at {stream.start}, the previous checkpoint ended at {earlier.end}"
            )
    if not stream.start <= offset < stream.end:
        problems.append(f"offset {offset} is outside the segment [{stream.start}, {stream.end})")
    if size != stream.records:
        problems.append(
            f"the proof's segment has {size} records, the checkpoint signed {stream.records}"
        )
    leaf = merkle.leaf_hash(offset, key, value) if 0 <= offset < 1 << 63 else b""
    if len(leaf) != HASH_SIZE or merkle.root_from_path(leaf, index, size, path) != stream.root:
        problems.append("the record and its audit path do not lead to the signed root")
    _link, why = link_problem(value, None)
    if why:
        problems.append(f"the record itself: {why}")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tradex audit check-proof", description=__doc__.split("\n")[0]
    )
    parser.add_argument("proof", metavar="FILE")
    parser.add_argument(
        "--public-key", required=True, metavar="K", help="PEM file or 64 hex digits"
    )
    args = parser.parse_args(argv)
    try:
        proof = load(Path(args.proof))
        public_key = read_public_key(args.public_key)
    except (ProofError, CheckpointError) as exc:
        print(f"tradex audit check-proof: {exc}", file=sys.stderr)
        return 2
    problems = check_proof(proof, public_key)
    record = proof.get("record", {})
    where = f"{record.get('topic')}[{record.get('partition')}]@{record.get('offset')} ({record.get('event_id')})"
    for problem in problems:
        print(f"INVALID: {problem}")
    print(f"{where}: {'included (proof valid)' if not problems else 'NOT PROVEN'}")
    return 1 if problems else 0
