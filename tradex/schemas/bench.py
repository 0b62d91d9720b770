"""Codec cost: encode (with envelope and hash chain) + decode to a domain object, per record.

    python -m tradex.schemas.bench [--records N] [--repeats R]

Last line: one JSON object (bench/README.md). Peer: confluent-kafka's AvroSerializer +
AvroDeserializer on the in-process mock registry, same record (as dicts, no chain).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from tradex.domain import Deposited, FillSettled, Liquidity, Posting, Side
from tradex.schemas.codec import Codec, EnvelopeFields
from tradex.schemas.remote import registry_client

T = 1_700_000_000_000_000_000


def typical_events() -> list[Any]:
    fill = FillSettled(
        "fill/9/77", 1, T, 77, 9, 1, Side.BUY, Liquidity.TAKER, 50_000, 3, 150_000, 300, 300_000_000, "USD", 150_300,
        (Posting(1, "USD", -150_300), Posting(-3, "USD", 150_000), Posting(1, "BTC", 3_000),
         Posting(-3, "BTC", -3_000), Posting(-2, "USD", 300)),
    )  # fmt: skip
    deposit = Deposited("d1", 1, T, "USD", 5, (Posting(1, "USD", 5), Posting(-1, "USD", -5)))
    return [deposit, fill]


def run_codec(codec: Codec, event: Any, count: int) -> float:
    env = EnvelopeFields("0190f0c2-0000-7000-8000-000000000001", "cause", "corr", "accounts/0", 1)
    prev = bytes(32)
    start = time.perf_counter()
    for _ in range(count):
        sealed = codec.encode_domain(event, env, prev)
        codec.decode_domain(sealed.data)
        prev = sealed.hash
    return (time.perf_counter() - start) / count * 1e6


def run_peer(codec: Codec, event: Any, count: int) -> float:
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    client = registry_client("mock://bench")
    subject = codec.subject_of(type(event).__name__)
    text = codec.registry.latest(subject).text
    serializer = AvroSerializer(client, text, conf={"auto.register.schemas": True})
    deserializer = AvroDeserializer(client, text)
    record = codec.decode(
        codec.encode_domain(event, EnvelopeFields("e", "", "", "p", 1)).data
    ).record
    ctx = SerializationContext("account-events", MessageField.VALUE)
    start = time.perf_counter()
    for _ in range(count):
        deserializer(serializer(record, ctx), ctx)
    return (time.perf_counter() - start) / count * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tradex bench codec", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    count = 2_000 if args.quick else args.records
    codec = Codec.offline()
    figures: dict[str, float] = {}
    peer: dict[str, Any] = {
        "name": "confluent-kafka AvroSerializer+AvroDeserializer (mock registry)"
    }
    ratios = []
    for event in typical_events():
        name = type(event).__name__
        ours = [run_codec(codec, event, count) for _ in range(args.repeats)]
        theirs = [run_peer(codec, event, count) for _ in range(args.repeats)]
        figures[f"{name}_us_per_record"] = round(statistics.median(ours), 2)
        peer[f"{name}_us_per_record"] = round(statistics.median(theirs), 2)
        ratios += [t / o for t, o in zip(theirs, ours, strict=True)]
        print(
            f"{name}: ours {figures[f'{name}_us_per_record']} us, peer {peer[f'{name}_us_per_record']} us"
        )
    result = {
        "bench": "codec",
        "ok": True,
        "figures": figures,
        "peer": peer,
        "ratio_min": round(min(ratios), 2),
        "cores": os.cpu_count(),
        "notes": "ours: encode_domain (envelope + SHA-256 chain) + decode_domain (validate); peer: dict round trip",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
