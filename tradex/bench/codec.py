"""Codec cost: encode (with envelope and hash chain) + decode to a domain object, per record.

    tradex bench codec [--records N] [--repeats R] [--quick]

Four codecs run side by side on the same records, repeats interleaved (the machine is
shared): ``ours`` (the C codec), ``twin`` (the pure-Python compiled codec), ``before``
(the same Codec with ``specialised=False``: domain -> dict -> fastavro, the first
implementation) and the peer,
confluent-kafka's AvroSerializer + AvroDeserializer on the in-process mock registry (same
record as a dict, no chain). Medians of the repeats; ``ok`` is false when ours or twin and
before disagree on a byte or a decoded value. Last line: one JSON object (``../shared/bench/README.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from tradex.domain import (
    Deposited,
    FillSettled,
    Liquidity,
    OrderAccepted,
    OrderKind,
    Posting,
    Side,
    StpMode,
)
from tradex.log.topics import ACCOUNT_EVENTS
from tradex.schemas.codec import Codec, EnvelopeFields
from tradex.schemas.remote import registry_client

T = 1_700_000_000_000_000_000
ORDER_ID = (3 << 40) | 123_456  # (input partition << 40) | input offset
ENVELOPE = EnvelopeFields(
    "0190f0c2-0000-7000-8000-000000000001", "cmd-42", "cmd-42", "accounts/0", 17
)


def typical_events() -> list[Any]:
    """What an account processor writes most: a deposit, an accepted order, a settled fill."""
    deposit = Deposited("d1", 1, T, "USD", 5, (Posting(1, "USD", 5), Posting(-1, "USD", -5)))
    accepted = OrderAccepted(
        "cmd-42", 1, T, ORDER_ID, 1, Side.BUY, OrderKind.GTC, 50_000, 3, 0, StpMode.NONE,
        "BTC", "USD", 1, 1_000, 1_000, 2_000, "USD", 150_300,
    )  # fmt: skip
    fill = FillSettled(
        "fill/9/77", 1, T, ORDER_ID, 9, 1, Side.BUY, Liquidity.TAKER, 50_000, 3, 150_000, 300, 300_000_000, "USD", 150_300,
        (Posting(1, "USD", -150_300), Posting(-3, "USD", 150_000), Posting(1, "BTC", 3_000),
         Posting(-3, "BTC", -3_000), Posting(-2, "USD", 300)),
    )  # fmt: skip
    return [deposit, accepted, fill]


def codec_round_trip(codec: Codec, event: Any) -> Callable[[int], float]:
    """µs per encode_domain (chained) + decode_domain."""

    def run(count: int) -> float:
        prev = bytes(32)
        encode, decode = codec.encode_domain, codec.decode_domain
        start = time.process_time()
        for _ in range(count):
            sealed = encode(event, ENVELOPE, prev)
            decode(sealed.data)
            prev = sealed.hash
        return (time.process_time() - start) / count * 1e6

    return run


def peer_round_trip(codec: Codec, event: Any) -> Callable[[int], float]:
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    client = registry_client("mock://bench")
    subject = codec.subject_of(type(event).__name__)
    text = codec.registry.latest(subject).text
    serializer = AvroSerializer(client, text, conf={"auto.register.schemas": True})
    deserializer = AvroDeserializer(client, text)
    record = codec.decode(codec.encode_domain(event, ENVELOPE).data).record
    ctx = SerializationContext(ACCOUNT_EVENTS, MessageField.VALUE)

    def run(count: int) -> float:
        start = time.process_time()
        for _ in range(count):
            deserializer(serializer(record, ctx), ctx)
        return (time.process_time() - start) / count * 1e6

    return run


def same_results(ours: Codec, before: Codec, event: Any) -> bool:
    prev = bytes(range(32))
    sealed = ours.encode_domain(event, ENVELOPE, prev)
    return sealed == before.encode_domain(event, ENVELOPE, prev) and ours.decode_domain(
        sealed.data
    ) == before.decode_domain(sealed.data)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex bench codec", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="records per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    count = min(args.records, 1_000) if args.quick else args.records
    repeats = 3 if args.quick else args.repeats
    ours, before = Codec.offline(), Codec.offline(specialised=False)
    twin = Codec.offline(native=False)  # the pure-Python compiled codec
    figures: dict[str, float] = {}
    peer: dict[str, Any] = {
        "name": "confluent-kafka AvroSerializer+AvroDeserializer (mock registry)"
    }
    ratios: list[float] = []
    ok = True
    for event in typical_events():
        name = type(event).__name__
        ok = ok and same_results(ours, before, event) and same_results(twin, before, event)
        runs = {
            "ours": codec_round_trip(ours, event),
            "twin": codec_round_trip(twin, event),
            "before": codec_round_trip(before, event),
            "peer": peer_round_trip(ours, event),
        }
        times: dict[str, list[float]] = {key: [] for key in runs}
        for _ in range(repeats):
            for key, run in runs.items():
                times[key].append(run(count))
        median = {key: round(statistics.median(values), 2) for key, values in times.items()}
        figures[f"{name}_us_per_record"] = median["ours"]
        figures[f"{name}_twin_us_per_record"] = median["twin"]
        figures[f"{name}_before_us_per_record"] = median["before"]
        peer[f"{name}_us_per_record"] = median["peer"]
        ratios += [p / o for p, o in zip(times["peer"], times["ours"], strict=True)]
        speedup = median["before"] / median["ours"]
        print(
            f"{name}: ours {median['ours']} us, Python twin {median['twin']} us, "
            f"before {median['before']} us "
            f"(x{speedup:.1f}), peer {median['peer']} us (median of {repeats} x {count})"
        )
    result = {
        "bench": "codec",
        "ok": ok,
        "figures": figures,
        "peer": peer,
        "ratio_min": round(min(ratios), 2),
        "cores": os.cpu_count(),
        "notes": "round trip per record: ours/twin/before = encode_domain (envelope + SHA-256 "
        "chain) + decode_domain (validate); ours = the C codec (native), twin = native=False "
        "(pure-Python compiled), before = specialised=False (dict + fastavro); "
        "peer: dict round trip, no chain",
    }
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
