"""Redis read models: versions as key prefixes, one Lua script per batch, a writer's lock.

Keys of a read model with namespace ``ns`` (:func:`tradex.projections.projector.namespace`;
it holds the topic prefix, so several exchanges share one Redis). Every key carries the
hash tag ``{ns}``, so a read model lives in one cluster slot and a script may touch any of
its keys:

- ``{ns}:versions`` (hash): ``live`` — the version readers resolve — and ``building``;
- ``{ns}:v<N>:`` + the model's own keys (:mod:`.redis_layout` for ``redis``);
- ``{ns}:v<N>:positions`` (hash ``topic:partition`` → next offset);
- ``{ns}:v<N>:lock`` (string): the writer's token, ``<client id>:<random>``, with an expiry.

**A batch is one script** (:data:`APPLY_LUA`, run by EVALSHA): it checks the writer's token
(and, for the live writer, that the version is still live, and that the stored positions
are the ones this writer last wrote), then runs the batch's writes — a program of bulk
commands packed with msgpack (:class:`Ops`) — sets the positions and renews the lock. A
script runs alone, so readers see the batch whole or not at all. Redis does not undo a
script that fails half-way, so nothing can fail after the first write: every check comes
first, the program is validated before it runs (known op codes, even argument counts, each
stream's first new id above its last one), and the script declares itself a writer
(``#!lua``), so Redis refuses it up front when it is out of memory. One batch is in flight
at a time (:meth:`RedisProjector.settle`). Stream entries have one field,
:data:`ENTRY_FIELD`, and are trimmed to an exact length after each batch's appends.

**One writer per version.** The lock is ``SET NX PX`` with a :data:`LOCK_TTL_MS` expiry,
renewed by every batch and by a heartbeat thread every :data:`LOCK_RENEW_S`. A process that
finds the lock taken looks up the holder's connection (its client id is in the token,
``CLIENT LIST ID``): when Redis no longer has that connection — the holder was killed, its
socket closed — the lock is taken over at once; otherwise the holder keeps it until it
lets go or stops renewing it (a hung holder: at most :data:`LOCK_TTL_MS`). A writer whose
lock was taken over fails its next batch with :class:`WriterLockLost` and reopens.

**Versions.** :meth:`RedisProjector.make_live` sets ``live`` in one command; readers resolve
``live`` inside their own read scripts, so a read sees one version. :meth:`~RedisProjector.drop`
unlinks a version's keys (SCAN + UNLINK in chunks of :data:`DROP_CHUNK_KEYS`).

**frozen()** runs one read-only script that returns every key of a version with its content,
so positions and rows come from one instant.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import secrets
import threading
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import msgpack
import redis

from tradex.infra import redis_client
from tradex.infra.faults import Fault
from tradex.infra.settings import Settings
from tradex.log.source import Place
from tradex.projections.column_events import events_of
from tradex.projections.projector import (
    ColumnarBatch,
    Event,
    Frozen,
    Projector,
    ProjectorBusy,
    SchemaOutdated,
    SinkReset,
    Versions,
    VersionSwitched,
    namespace,
)

log = logging.getLogger(__name__)

LOCK_TTL_MS = 10_000  # a hung writer (still connected) holds its version at most this long
LOCK_RENEW_S = 2.0  # the heartbeat renews the lock this often (5 renewals per TTL)
DROP_CHUNK_KEYS = 1_000  # keys unlinked per command when dropping a version
SCAN_COUNT = 1_000
LUA_CHUNK_ARGS = 1_000  # arguments per command inside the scripts (Lua's unpack limit: 8,000)
assert LUA_CHUNK_ARGS % 2 == 0, "chunks of HSET/ZADD keep their pairs"
FROZEN_TIMEOUT_S = 120.0  # a frozen read of a large version returns everything in one reply

# op codes of a batch program (see Ops): bulk commands, each on one key of the version
_BULK_OPS = ("hset", "hdel", "zadd", "zrem", "sadd")
_PAIRED_OPS = ("hset", "zadd")
ENTRY_FIELD = "m"  # the one field of every stream entry (.redis_layout)


class WriterLockLost(VersionSwitched):
    """Another process took this version's lock over (this one stalled past the lock's
    expiry, or its connection dropped): reopen, which waits for the lock again.

    A :class:`VersionSwitched`, because the way out is the same — close, reopen the live
    version from its stored positions — and `tradex run projector` already takes it."""


def layout_field(version: int) -> str:
    """The versions hash's field holding ``version``'s layout."""
    return f"layout:{version}"


def versions_key(ns: str) -> str:
    return f"{{{ns}}}:versions"


def version_base(ns: str) -> str:
    """What a version's prefix starts with: ``version_base(ns) + f"{version}:"``."""
    return f"{{{ns}}}:v"


def version_prefix(ns: str, version: int) -> str:
    """The prefix of every key of ``version``."""
    return f"{version_base(ns)}{version}:"


def positions_field(place: Place) -> str:
    return f"{place[0]}:{place[1]}"


def _place(field: bytes | str) -> Place:
    text = field.decode() if isinstance(field, bytes) else field
    topic, _, partition = text.rpartition(":")
    return topic, int(partition)


def parse_positions(flat: Mapping[Any, Any]) -> dict[Place, int]:
    positions = {_place(k): int(v) for k, v in flat.items()}
    assert all(offset >= 0 for offset in positions.values()), positions
    return positions


class Ops:
    """The writes of one batch, as bulk commands on keys of one version (key suffixes).

    Every value is a ``str``: Lua numbers are doubles and Redis formats large ones as
    ``1.7e+18``, so integers travel as text."""

    def __init__(self) -> None:
        self.program: list[list[Any]] = []
        self.ops_packed: list[bytes] = []  # see packed()
        self.ops_packed_count = 0

    def bulk(self, code: str, key: str, args: list[str]) -> None:
        """``HSET``/``ZADD`` (pairs), ``HDEL``/``ZREM``/``SADD`` (members) on ``key``."""
        assert code in _BULK_OPS, code
        assert args, f"{code} {key} without arguments"
        assert code not in _PAIRED_OPS or len(args) % 2 == 0, f"{code} {key}: odd arguments"
        self.program.append([code, key, *args])

    def xadd(
        self, key: str, kept: int, entries: Sequence[tuple[str, bytes]], total: int | None = None
    ) -> None:
        """Append ``entries`` — (id, the value of the entry's one field) — to stream ``key``,
        then trim it to exactly ``kept`` entries. Ids must increase, above the stream's
        last one. ``total``: the entries the stream has had in all, these included, when the
        caller knows it — a stream that never had more than ``kept`` is not trimmed (an
        ``XTRIM`` per stream and batch is most of the cost of thousands of short streams)."""
        assert kept > 0, kept
        assert entries, key
        assert total is None or total >= len(entries), (key, total)
        trim = kept if total is None or total > kept else 0
        program: list[Any] = ["xadd", key, str(trim)]
        for entry in entries:
            program.extend(entry)
        self.program.append(program)

    def packed(self, ops: bytes, count: int) -> None:
        """``count`` ops already packed (msgpack, one after the other, as :meth:`payload`
        packs :attr:`program`'s): the account streams' ``xadd`` ops of the columnar fold
        (:func:`.entry_kernel.pack_stream_ops`)."""
        assert count > 0, count
        assert ops, count
        self.ops_packed.append(ops)
        self.ops_packed_count += count

    def payload(self, expected: list[str], moved: list[str]) -> bytes:
        """The batch script's ``ARGV[6]``: msgpack ``[expected, moved, program]``, the
        program being :attr:`program` then the packed ops."""
        if not self.ops_packed:
            return msgpack.packb([expected, moved, self.program], use_bin_type=False)
        pack = msgpack.Packer(use_bin_type=False).pack
        count = len(self.program) + self.ops_packed_count
        assert count < 1 << 32, count
        header = bytes((0x93,)) + pack(expected) + pack(moved) + bytes((0xDD,))
        return b"".join(
            (header, count.to_bytes(4, "big"), *map(pack, self.program), *self.ops_packed)
        )


# The batch script. KEYS: versions, lock, positions. ARGV: version, live writer (1/0), lock
# token, lock ttl ms, key prefix, msgpack [expected positions, new positions, program],
# arguments per command, the field name of stream entries.
APPLY_LUA = r"""#!lua
local version, live_writer, token, ttl, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', KEYS[2]) ~= token then
  return redis.error_reply('TRADEX_LOCK_LOST ' .. KEYS[2] .. ' is not held by this writer')
end
if live_writer == '1' then
  local live = redis.call('HGET', KEYS[1], 'live')
  if live ~= version then
    return redis.error_reply('TRADEX_SWITCHED v' .. tostring(live) .. ' is live, not v' .. version)
  end
end
local batch = cmsgpack.unpack(ARGV[6])
local expected, moved, program = batch[1], batch[2], batch[3]
for i = 1, #expected, 2 do
  local stored = redis.call('HGET', KEYS[3], expected[i]) or '0'
  if stored ~= expected[i + 1] then
    return redis.error_reply('TRADEX_POSITIONS ' .. expected[i] .. ' is at ' .. stored ..
      ', this writer expected ' .. expected[i + 1])
  end
end
local bulk = {hset = 'HSET', hdel = 'HDEL', zadd = 'ZADD', zrem = 'ZREM', sadd = 'SADD'}
local paired = {hset = true, zadd = true}
local function first_id_above_last(op, key, first)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
  if not last then return true end
  local a_ms, a_seq = string.match(op[first], '^(%d+)-(%d+)$')
  local b_ms, b_seq = string.match(last[1], '^(%d+)-(%d+)$')
  a_ms, a_seq, b_ms, b_seq = tonumber(a_ms), tonumber(a_seq), tonumber(b_ms), tonumber(b_seq)
  return a_ms > b_ms or (a_ms == b_ms and a_seq > b_seq)
end
-- validate everything before the first write: a script is not undone when it fails
for _, op in ipairs(program) do
  local code, key = op[1], prefix .. op[2]
  if bulk[code] then
    if #op < 3 or (paired[code] and (#op - 2) % 2 ~= 0) then
      return redis.error_reply('TRADEX_PROGRAM bad arguments for ' .. code .. ' ' .. key)
    end
  elseif code == 'xadd' then
    if #op < 5 or (#op - 3) % 2 ~= 0 or not first_id_above_last(op, key, 4) then
      return redis.error_reply('TRADEX_PROGRAM bad entries for ' .. key)
    end
  else
    return redis.error_reply('TRADEX_PROGRAM unknown op ' .. tostring(code))
  end
end
local chunk = tonumber(ARGV[7])
for _, op in ipairs(program) do
  local code, key = op[1], prefix .. op[2]
  if bulk[code] then
    local i, last = 3, #op
    while i <= last do
      local j = math.min(i + chunk - 1, last)
      redis.call(bulk[code], key, unpack(op, i, j))
      i = j + 1
    end
  else
    local field = ARGV[8]
    for i = 4, #op, 2 do
      redis.call('XADD', key, op[i], field, op[i + 1])
    end
    if op[3] ~= '0' then redis.call('XTRIM', key, 'MAXLEN', op[3]) end
  end
end
if #moved > 0 then redis.call('HSET', KEYS[3], unpack(moved)) end
redis.call('PEXPIRE', KEYS[2], ttl)
return #program
"""

# KEYS: lock. ARGV: the holder's token, a new token, ttl ms ('' new token: renew only).
_LOCK_CAS_LUA = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('PEXPIRE', KEYS[1], ARGV[3])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
"""
_UNLOCK_LUA = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: versions. ARGV: version.
_MAKE_LIVE_LUA = r"""
redis.call('HSET', KEYS[1], 'live', ARGV[1])
if redis.call('HGET', KEYS[1], 'building') == ARGV[1] then redis.call('HDEL', KEYS[1], 'building') end
return 1
"""

# ARGV: the version's key prefix. Every key of the version with its type and content.
_FROZEN_LUA = r"""#!lua flags=no-writes
local seen, out, cursor = {}, {}, '0'
repeat
  local found = redis.call('SCAN', cursor, 'MATCH', ARGV[1] .. '*', 'COUNT', ARGV[2])
  cursor = found[1]
  for _, key in ipairs(found[2]) do
    if not seen[key] then
      seen[key] = true
      local kind = redis.call('TYPE', key)['ok']
      local content
      if kind == 'hash' then content = redis.call('HGETALL', key)
      elseif kind == 'zset' then content = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
      elseif kind == 'set' then content = redis.call('SMEMBERS', key)
      elseif kind == 'stream' then content = redis.call('XRANGE', key, '-', '+')
      elseif kind == 'string' then content = {redis.call('GET', key)}
      else content = {} end
      out[#out + 1] = {key, kind, content}
    end
  end
until cursor == '0'
return out
"""


class _WriterLock:
    """``{ns}:v<N>:lock`` held by one connection of this process (see the module doc)."""

    def __init__(self, settings: Settings, key: str) -> None:
        self.settings = settings
        self.key = key
        self.token = ""
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, writer: redis.Redis) -> None:
        """Take the lock for ``writer`` (a single-connection client) or raise ProjectorBusy."""
        token = f"{writer.client_id()}:{secrets.token_hex(8)}"
        if not writer.set(self.key, token, nx=True, px=LOCK_TTL_MS):
            stored = writer.get(self.key)
            holder = stored.encode() if isinstance(stored, str) else stored
            if holder is not None and self._holder_alive(writer, holder):
                ttl_ms = writer.pttl(self.key)
                raise ProjectorBusy(
                    f"{self.key} is held by client {holder.split(b':')[0].decode()} "
                    f"(connected; expires in {ttl_ms} ms unless renewed)"
                )
            cas = writer.register_script(_LOCK_CAS_LUA)
            if holder is None:
                taken = bool(writer.set(self.key, token, nx=True, px=LOCK_TTL_MS))
            else:
                taken = bool(cas(keys=[self.key], args=[holder, token, LOCK_TTL_MS]))
                if taken:
                    log.info("%s: took over the lock of a closed connection", self.key)
            if not taken:
                raise ProjectorBusy(f"{self.key}: another process took the lock just now")
        self.token = token
        self._thread = threading.Thread(
            target=self._heartbeat, name=f"lock {self.key}", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _holder_alive(conn: redis.Redis, holder: bytes) -> bool:
        client_id = holder.split(b":")[0]
        if not client_id.isdigit():
            return True
        try:
            found = conn.execute_command("CLIENT", "LIST", "ID", client_id.decode())
        except redis.ResponseError:
            return True  # CLIENT not allowed here: wait for the expiry
        return bool(found)

    def _heartbeat(self) -> None:
        conn = redis_client.client(self.settings)
        renew = conn.register_script(_LOCK_CAS_LUA)
        try:
            while not self._stop.wait(LOCK_RENEW_S):
                try:
                    if not renew(keys=[self.key], args=[self.token, "", LOCK_TTL_MS]):
                        log.warning("%s: the lock was taken over", self.key)
                        self.lost.set()
                        return
                except redis.RedisError as exc:  # the next batch's check decides
                    log.warning("%s: lock renewal failed: %s", self.key, exc)
        finally:
            conn.close()

    def release(self, writer: redis.Redis) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.token:
            try:
                writer.register_script(_UNLOCK_LUA)(keys=[self.key], args=[self.token])
            except redis.RedisError as exc:  # it expires by itself
                log.warning("%s: release failed: %s", self.key, exc)
            self.token = ""


class RedisProjector(Projector):
    """The Redis sink: subclasses give :meth:`load`, :meth:`write` and :meth:`table_rows`."""

    positions_suffix: ClassVar[str] = "positions"
    lock_suffix: ClassVar[str] = "lock"
    # the layout this code writes a version's keys in (the subclass's: see
    # redis_layout.LAYOUT); a version without one recorded was written by layout 1
    layout_version: ClassVar[int] = 1

    def __init__(self, settings: Settings, version: int) -> None:
        super().__init__(settings, version)
        self.prefix = version_prefix(self.namespace, version)
        self.versions_key = versions_key(self.namespace)
        self._writer: redis.Redis | None = None
        self._lock: _WriterLock | None = None
        self._apply_sha = ""
        self._in_flight = False  # a batch's script was sent, its reply not read yet
        self._broken = False  # a batch failed: the in-memory state no longer matches
        self._fault = Fault.from_env()
        self._batches = 0

    # -- the subclass's part ------------------------------------------------------------

    @abstractmethod
    def load(self, conn: redis.Redis) -> None:
        """Load what the fold keeps in memory from this version's keys (on open)."""

    @abstractmethod
    def write(self, events: Sequence[Event], ops: Ops) -> None:
        """Fold ``events`` and add the batch's writes to ``ops`` (key suffixes)."""

    @abstractmethod
    def table_rows(self, suffix: str, kind: str, content: Any) -> tuple[str, list[tuple[Any, ...]]]:
        """The logical table and rows of one key of a version (``suffix``: the key without
        the version prefix; ``kind``/``content`` as :data:`_FROZEN_LUA` returns them)."""

    # -- plumbing -----------------------------------------------------------------------

    def _client(self, timeout_s: float = redis_client.socket_timeout_s) -> redis.Redis:
        return redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=timeout_s,
            socket_connect_timeout=redis_client.socket_timeout_s,
        )  # fmt: skip

    def _open(self) -> dict[Place, int]:
        writer = redis.Redis.from_url(
            self.settings.redis_url, single_connection_client=True,
            socket_timeout=redis_client.socket_timeout_s * 6,
            socket_connect_timeout=redis_client.socket_timeout_s,
        )  # fmt: skip
        lock = _WriterLock(self.settings, self.prefix + self.lock_suffix)
        try:
            lock.acquire(writer)
        except BaseException:
            writer.close()
            raise
        self._writer, self._lock = writer, lock
        try:
            self._apply_sha = writer.script_load(APPLY_LUA)
            positions = parse_positions(writer.hgetall(self.prefix + self.positions_suffix))
            self._check_layout(writer, bool(positions))
            self.load(writer)
            return positions
        except BaseException:
            self.close()
            raise

    def _check_layout(self, writer: redis.Redis, written: bool) -> None:
        """Record this code's layout for a version not written yet; refuse one written in
        another layout (:class:`SchemaOutdated`)."""
        field = layout_field(self.version)
        found = writer.hget(self.versions_key, field)
        if not written:
            writer.hset(self.versions_key, field, self.layout_version)
            return
        written_in = 1 if found is None else int(found)
        if written_in != self.layout_version:
            raise SchemaOutdated(
                f"{self.prefix}: written in layout {written_in}, this code writes layout "
                f"{self.layout_version}; rebuild it: tradex projections rebuild {self.name}"
            )

    def write_columns(self, batch: ColumnarBatch, ops: Ops) -> None:
        """:meth:`write` of a columnar batch; by default on its records rebuilt from the
        columns (:func:`.column_events.events_of`)."""
        self.write(events_of(batch), ops)

    def _apply_columns(self, batch: ColumnarBatch, positions: Mapping[Place, int]) -> None:
        self._send(partial(self.write_columns, batch), positions)

    def _apply(self, events: Sequence[Event], positions: Mapping[Place, int]) -> None:
        self._send(partial(self.write, events), positions)

    def _send(self, write: Callable[[Ops], None], positions: Mapping[Place, int]) -> None:
        """Run ``write`` (the fold, adding the batch's writes to an :class:`Ops`) and send
        the batch's script."""
        writer, lock = self._writer, self._lock
        assert writer is not None and lock is not None, "open() first"
        assert not self._broken, "a batch failed: close and reopen"
        stored = self._stored
        expected: list[str] = []
        moved: list[str] = []
        for place, offset in positions.items():
            field = positions_field(place)
            expected += [field, str(stored.get(place, 0))]
            moved += [field, str(offset)]
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            ops = Ops()
            write(ops)
            payload = ops.payload(expected, moved)
            # The batch in flight ran while this one was folded; its reply now, and this
            # batch is sent only if it succeeded (a failure leaves the state ahead of the
            # store either way: the projector must reopen).
            self.settle()
            if lock.lost.is_set():
                raise WriterLockLost(f"{lock.key} was taken over")
            self._fault.check("sink_before_commit", self._batches)
            connection = writer.connection
            assert connection is not None, "a single-connection client"
            connection.send_command(
                "EVALSHA", self._apply_sha, 3,
                self.versions_key, lock.key, self.prefix + self.positions_suffix,
                self.version, "1" if self.live_writer else "0", lock.token, LOCK_TTL_MS,
                self.prefix, payload, LUA_CHUNK_ARGS, ENTRY_FIELD,
            )  # fmt: skip
            self._in_flight = True
        except BaseException:
            self._broken = True
            raise
        finally:
            if paused:
                # The fold's survivors (the state it grew, the batch still held by the
                # runner) join the frozen generation (O(1)) instead of being rescanned by
                # every full collection: see docs/redis.md, "Throughput".
                gc.freeze()
                gc.enable()
        self._batches += 1

    def settle(self) -> None:
        """Wait for the batch in flight, if any; raise what made it fail.

        A batch's script is sent and not waited for: Redis runs it while this process
        reads and folds the next batch, whose :meth:`apply` reads the reply before sending
        (or :meth:`close` reads it). A failed batch wrote nothing (the script checks
        before it writes) and the next one is not sent."""
        if not self._in_flight:
            return
        self._in_flight = False
        connection = self._writer.connection if self._writer is not None else None
        assert connection is not None, "open() first"
        try:
            reply = connection.read_response()
        except redis.exceptions.NoScriptError as exc:  # nothing ran: reopen loads it again
            self._broken = True
            raise SinkReset(f"{self.namespace}: Redis does not know the batch script "
                            "(restarted or flushed)") from exc  # fmt: skip
        except redis.ResponseError as exc:
            self._broken = True
            text = str(exc)
            if text.startswith("TRADEX_SWITCHED"):
                raise VersionSwitched(f"{self.namespace}: {text.split(' ', 1)[1]}") from exc
            if text.startswith("TRADEX_LOCK_LOST"):
                raise WriterLockLost(text.split(" ", 1)[1]) from exc
            raise
        except BaseException:
            self._broken = True
            raise
        assert isinstance(reply, int), reply

    def close(self) -> None:
        try:
            if self._writer is not None and not self._broken:
                self.settle()
        finally:
            if self._lock is not None and self._writer is not None:
                self._lock.release(self._writer)
            self._lock = None
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # -- versions -----------------------------------------------------------------------

    @classmethod
    def versions(cls, settings: Settings) -> Versions:
        conn = redis_client.client(settings)
        try:
            live, building = conn.hmget(
                versions_key(namespace(settings, cls.name)), ["live", "building"]
            )
        finally:
            conn.close()
        return Versions(
            int(live) if live is not None else None,
            int(building) if building is not None else None,
        )

    def mark_building(self) -> None:
        conn = self._client()
        try:
            conn.hset(self.versions_key, "building", self.version)
        finally:
            conn.close()

    def make_live(self) -> None:
        conn = self._client()
        try:
            conn.register_script(_MAKE_LIVE_LUA)(keys=[self.versions_key], args=[self.version])
        finally:
            conn.close()

    def drop(self) -> None:
        conn = self._client()
        try:
            live = conn.hget(self.versions_key, "live")
            if live is not None and int(live) == self.version:
                raise RuntimeError(f"{self.prefix} is live: it is not dropped")
            chunk: list[bytes] = []
            for key in conn.scan_iter(match=self.prefix + "*", count=SCAN_COUNT):
                chunk.append(key)
                if len(chunk) >= DROP_CHUNK_KEYS:
                    conn.unlink(*chunk)
                    chunk.clear()
            if chunk:
                conn.unlink(*chunk)
            building = conn.hget(self.versions_key, "building")
            if building is not None and int(building) == self.version:
                conn.hdel(self.versions_key, "building")
            conn.hdel(self.versions_key, layout_field(self.version))
        finally:
            conn.close()

    def positions(self) -> dict[Place, int]:
        conn = self._client()
        try:
            return parse_positions(conn.hgetall(self.prefix + self.positions_suffix))
        finally:
            conn.close()

    # -- verification -------------------------------------------------------------------

    def frozen(self) -> Frozen:
        conn = self._client(FROZEN_TIMEOUT_S)
        try:
            keys = conn.register_script(_FROZEN_LUA)(args=[self.prefix, SCAN_COUNT])
        finally:
            conn.close()
        return RedisFrozen(self, keys)


class RedisFrozen(Frozen):
    """One version read by one script: positions and every key at the same instant."""

    def __init__(self, projector: RedisProjector, keys: list[list[Any]]) -> None:
        prefix = projector.prefix.encode()
        self.positions = {}
        self.tables: dict[str, list[tuple[Any, ...]]] = {}
        for key, kind, content in keys:
            assert key.startswith(prefix), key
            suffix = key[len(prefix) :].decode()
            if suffix == projector.positions_suffix:
                self.positions = parse_positions(
                    dict(zip(content[::2], content[1::2], strict=True))
                )
                continue
            if suffix == projector.lock_suffix:
                continue
            table, rows = projector.table_rows(suffix, kind.decode(), content)
            self.tables.setdefault(table, []).extend(rows)
        for rows in self.tables.values():
            rows.sort()

    def digests(self) -> dict[str, tuple[int, str]]:
        return {
            table: (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
            for table, rows in sorted(self.tables.items())
        }

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        return list(self.tables.get(table, []))

    def close(self) -> None:
        self.tables = {}
