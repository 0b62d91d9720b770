"""The Redis sink on the real Redis: the batch script's checks, the writer's lock,
versions, drop and frozen reads (a small projector whose batches are given by the test)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytest
import redis

from tradex.infra import redis_client
from tradex.infra.settings import Settings
from tradex.projections.projector import (
    Event,
    ProjectorBusy,
    SchemaOutdated,
    SinkReset,
    VersionSwitched,
)
from tradex.projections.redis_store import (
    LOCK_TTL_MS,
    Ops,
    RedisProjector,
    WriterLockLost,
    layout_field,
    version_prefix,
)

pytestmark = pytest.mark.integration

PLACE = ("account-events", 0)


class Probe(RedisProjector):
    """Writes whatever the test put in ``next_ops`` (a function of the Ops); :meth:`put`
    applies a batch and waits for its reply."""

    name: ClassVar[str] = "probe"
    topics: ClassVar[tuple[str, ...]] = ("account-events",)

    def __init__(self, settings: Settings, version: int) -> None:
        super().__init__(settings, version)
        self.next_ops: Any = None
        self.loaded = 0

    def load(self, conn: redis.Redis) -> None:
        self.loaded += 1

    def put(self, positions: dict[tuple[str, int], int]) -> None:
        self.apply([], positions)
        self.settle()

    def write(self, events: Sequence[Event], ops: Ops) -> None:
        if self.next_ops is not None:
            self.next_ops(ops)

    def table_rows(self, suffix: str, kind: str, content: Any) -> tuple[str, list[tuple[Any, ...]]]:
        if kind == "hash":
            return suffix, [tuple(content[i : i + 2]) for i in range(0, len(content), 2)]
        if kind == "stream":
            return suffix, [(entry, tuple(fields)) for entry, fields in content]
        return suffix, [(member,) for member in content]


@pytest.fixture
def conn(redis_settings: Settings) -> Iterator[redis.Redis]:
    found = redis_client.client(redis_settings)
    yield found
    found.close()


@pytest.fixture
def probe(redis_settings: Settings) -> Iterator[Probe]:
    found = Probe(redis_settings, 1)
    assert found.open() == {}
    yield found
    found.close()


def hset(key: str, *pairs: str) -> Any:
    return lambda ops: ops.bulk("hset", key, list(pairs))


def live_with_a_batch(probe: Probe) -> None:
    """``probe`` live, as its live writer, with one batch written: h.a = 1, position 1."""
    probe.make_live()
    probe.live_writer = True
    probe.next_ops = hset("h", "a", "1")
    probe.put({PLACE: 1})


def reopened_live(settings: Settings, next_ops: Any) -> Probe:
    """Version 1 opened again as its live writer after :func:`live_with_a_batch` (its
    stored position 1), ``next_ops`` its next batch's program."""
    again = Probe(settings, 1)
    assert again.open() == {PLACE: 1}
    again.live_writer = True
    again.next_ops = next_ops
    return again


def test_a_batch_writes_its_keys_and_positions_in_one_script(
    probe: Probe, conn: redis.Redis
) -> None:
    def program(ops: Ops) -> None:
        ops.bulk("hset", "h", ["a", "1", "b", "2"])
        ops.bulk("zadd", "z", ["5", "five", "7", "seven"])
        ops.bulk("sadd", "s", ["x"])
        ops.xadd("x", 2, [("1-0", b"one"), ("2-0", b"two"), ("3-0", b"three")])

    probe.next_ops = program
    probe.put({PLACE: 10})
    p = probe.prefix
    assert conn.hgetall(p + "h") == {b"a": b"1", b"b": b"2"}
    assert conn.zrange(p + "z", 0, -1, withscores=True) == [(b"five", 5.0), (b"seven", 7.0)]
    assert [e for e, _ in conn.xrange(p + "x")] == [b"2-0", b"3-0"], "trimmed to exactly 2"
    assert probe.positions() == {PLACE: 10}
    assert 0 < conn.pttl(p + "lock") <= LOCK_TTL_MS
    big = [str(i) for i in range(5_001)]  # more arguments than one command takes in Lua
    probe.next_ops = lambda ops: ops.bulk("sadd", "s", big)
    probe.put({PLACE: 11})
    assert conn.scard(p + "s") == 5_002


def test_a_program_that_would_fail_halfway_writes_nothing(probe: Probe, conn: redis.Redis) -> None:
    probe.next_ops = lambda ops: ops.xadd("x", 5, [("5-0", b"five")])
    probe.put({PLACE: 1})

    def halfway(ops: Ops) -> None:
        ops.bulk("hset", "h", ["a", "1"])
        ops.xadd("x", 5, [("4-0", b"four")])  # not above the stream's last id

    probe.next_ops = halfway
    with pytest.raises(redis.ResponseError, match="TRADEX_PROGRAM"):
        probe.put({PLACE: 2})
    assert not conn.exists(probe.prefix + "h")
    assert probe.positions() == {PLACE: 1}
    with pytest.raises(AssertionError, match="close and reopen"):
        probe.put({PLACE: 3})


def test_one_writer_per_version_and_a_dead_writers_lock_is_taken_over(
    redis_settings: Settings, conn: redis.Redis
) -> None:
    first = Probe(redis_settings, 1)
    first.open()
    second = Probe(redis_settings, 1)
    with pytest.raises(ProjectorBusy, match="connected"):
        second.open()
    first.close()
    second.open()
    second.close()
    # a writer that died: its lock names a connection Redis no longer has
    dead = redis.Redis.from_url(redis_settings.redis_url, single_connection_client=True)
    lock = version_prefix(second.namespace, 1) + "lock"
    conn.set(lock, f"{dead.client_id()}:feed", px=LOCK_TTL_MS)
    dead.close()
    third = Probe(redis_settings, 1)
    third.open()  # at once, not after LOCK_TTL_MS
    assert conn.get(lock) == third._lock.token.encode()  # type: ignore[union-attr]
    third.close()
    assert not conn.exists(lock), "released on close"


def test_a_writer_whose_lock_was_taken_writes_nothing(probe: Probe, conn: redis.Redis) -> None:
    conn.set(probe.prefix + "lock", "1:someone-else")
    probe.next_ops = hset("h", "a", "1")
    with pytest.raises(WriterLockLost):
        probe.put({PLACE: 5})
    assert not conn.exists(probe.prefix + "h")
    assert probe.positions() == {}


def test_a_live_writer_stops_at_a_switch_and_readers_see_one_version(
    redis_settings: Settings, probe: Probe, conn: redis.Redis
) -> None:
    live_with_a_batch(probe)
    assert Probe.versions(redis_settings) == (1, None)
    fresh = Probe(redis_settings, 2)
    fresh.mark_building()
    assert Probe.versions(redis_settings) == (1, 2)
    fresh.make_live()
    assert Probe.versions(redis_settings) == (2, None)
    probe.next_ops = hset("h", "a", "2")
    with pytest.raises(VersionSwitched, match="v2 is live"):
        probe.put({PLACE: 2})
    assert conn.hget(probe.prefix + "h", "a") == b"1"
    with pytest.raises(RuntimeError, match="is live"):
        fresh.drop()


def test_drop_unlinks_every_key_of_a_version_and_only_those(
    redis_settings: Settings, probe: Probe, conn: redis.Redis
) -> None:
    keys = [f"k{i}" for i in range(2_500)]

    def many(ops: Ops) -> None:
        for key in keys:
            ops.bulk("sadd", key, ["1"])

    probe.next_ops = many
    probe.put({PLACE: 1})
    probe.close()
    other = Probe(redis_settings, 2)
    other.open()
    other.next_ops = hset("h", "a", "1")
    other.put({PLACE: 1})
    other.close()
    before = conn.dbsize()
    Probe(redis_settings, 1).drop()
    assert conn.dbsize() == before - len(keys) - 1  # and the positions
    assert Probe(redis_settings, 2).positions() == {PLACE: 1}


def test_frozen_reads_positions_and_keys_together(probe: Probe) -> None:
    def program(ops: Ops) -> None:
        ops.bulk("hset", "h", ["a", "1"])
        ops.xadd("x", 3, [("1-0", b"one")])

    probe.next_ops = program
    probe.put({PLACE: 7})
    with probe.frozen() as view:
        assert view.positions == {PLACE: 7}
        assert view.rows("h") == [(b"a", b"1")]
        assert view.rows("x") == [(b"1-0", (b"m", b"one"))]
        assert set(view.digests()) == {"h", "x"}, "the lock and positions are not tables"
    assert probe.loaded == 1


def test_a_failed_batch_in_flight_fails_the_next_apply_or_close(
    redis_settings: Settings, probe: Probe, conn: redis.Redis
) -> None:
    live_with_a_batch(probe)
    Probe(redis_settings, 2).make_live()
    probe.next_ops = hset("h", "a", "2")
    probe.apply([], {PLACE: 2})  # sent; Redis refuses it
    with pytest.raises(VersionSwitched):
        probe.apply([], {PLACE: 3})  # reads that reply first, sends nothing
    assert conn.hget(probe.prefix + "h", "a") == b"1"
    assert probe.positions() == {PLACE: 1}
    probe.close()
    again = reopened_live(redis_settings, hset("h", "a", "3"))
    again.apply([], {PLACE: 2})
    with pytest.raises(VersionSwitched):
        again.close()
    assert conn.hget(probe.prefix + "h", "a") == b"1"
    assert not conn.exists(probe.prefix + "lock"), "released all the same"


def test_a_batch_script_redis_does_not_know_writes_nothing_and_a_reopen_goes_on(
    redis_settings: Settings, probe: Probe, conn: redis.Redis
) -> None:
    """As after a Redis restart (scripts are not persisted): the batch is refused before
    it runs; the projector reopens (loading the script) and resumes from its positions.
    (Simulated with an unknown digest: SCRIPT FLUSH would break the shared server's
    other users.)"""
    live_with_a_batch(probe)
    probe._apply_sha = "0" * 40
    probe.next_ops = hset("h", "a", "2")
    probe.apply([], {PLACE: 2})
    with pytest.raises(SinkReset, match="does not know the batch script"):
        probe.settle()
    assert conn.hget(probe.prefix + "h", "a") == b"1"
    assert probe.positions() == {PLACE: 1}
    probe.close()
    again = reopened_live(redis_settings, hset("h", "a", "2"))
    again.put({PLACE: 2})
    assert conn.hget(probe.prefix + "h", "a") == b"2"
    again.close()


def test_a_version_written_in_another_layout_is_refused_with_the_rebuild_command(
    redis_settings: Settings, conn: redis.Redis
) -> None:
    class NewerProbe(Probe):
        layout_version: ClassVar[int] = 2

    first = NewerProbe(redis_settings, 3)
    assert first.open() == {}  # a version not written yet takes this code's layout
    assert conn.hget(first.versions_key, layout_field(3)) == b"2"
    first.put({PLACE: 1})
    first.close()
    again = NewerProbe(redis_settings, 3)
    assert again.open() == {PLACE: 1}  # the same layout: goes on
    again.close()
    older = Probe(redis_settings, 3)  # layout 1 code meets a layout 2 version
    with pytest.raises(SchemaOutdated, match=r"layout 2, this code writes layout 1.*rebuild probe"):
        older.open()
    conn.hdel(older.versions_key, layout_field(3))  # as older code left it: no layout noted
    with pytest.raises(SchemaOutdated, match=r"written in layout 1, this code writes layout 2"):
        NewerProbe(redis_settings, 3).open()
    assert conn.hget(older.versions_key, layout_field(3)) is None  # refused: nothing noted
    NewerProbe(redis_settings, 3).drop()
    assert conn.hget(older.versions_key, layout_field(3)) is None
