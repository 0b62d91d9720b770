"""The read-and-decode micro bench: both paths read and decode the same records."""

from __future__ import annotations

import pytest

from tests.schemas.samples import samples
from tradex.bench.read_columns import read_speed
from tradex.infra.kafka import TopicSpec, ensure_topics, produce_sync
from tradex.infra.settings import Settings
from tradex.log.topics import TOPIC_TYPES
from tradex.projections.analytics_model import ClickHouseReadModel
from tradex.schemas.codec import Codec, EnvelopeFields

pytestmark = pytest.mark.integration


def test_both_paths_read_and_decode_the_same_records(settings: Settings) -> None:
    codec = Codec.offline()
    cls = ClickHouseReadModel
    ensure_topics(settings, {topic: TopicSpec(partitions=2) for topic in cls.topics})
    env = EnvelopeFields("e", "c", "k", "p/0", 1)
    wanted = 0
    for topic in cls.topics:
        found = [o for o in samples() if type(o) in TOPIC_TYPES[topic]]
        records = [(b"k", codec.encode_domain(o, env).data) for o in found * 3]
        produce_sync(settings, settings.topic(topic), records)
        wanted += 3 * sum(type(o) not in cls.ignores for o in found)
    figures = read_speed(settings, cls, codec)
    assert figures["columnar"]["decoded"] == figures["rows"]["decoded"] == wanted
    assert figures["columnar"]["records"] > wanted  # the ignored ones were read too
    assert figures["rows"]["cpu_us_per_record"] > 0
