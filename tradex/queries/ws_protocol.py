"""What WebSocket clients send, parsed and checked (pure: no I/O).

Two dialects on one gateway (docs/api.md, *WebSocket*):

- **TradeX** (``/tradex/v1/ws``): JSON objects with an ``op`` — ``subscribe`` /
  ``unsubscribe`` a ``channel`` (``book``, ``trades``, ``ticker``, ``candles:<interval>``
  with a ``symbol``; ``orders``, ``fills``, ``balances`` after ``auth``, optionally for one
  ``accountId``), ``auth`` (an access token, or an API key with a signed timestamp),
  ``ping``. Answers and errors echo the request's ``id``.
- **Binance** (``/ws``, ``/ws/<streams>``, ``/stream?streams=``): stream names
  ``<symbol>@depth[@100ms|@1000ms]``, ``<symbol>@depth<5|10|20>[@100ms|@1000ms]``,
  ``<symbol>@trade``, ``<symbol>@aggTrade``, ``<symbol>@kline_<interval>``,
  ``<symbol>@ticker``, ``<symbol>@miniTicker``, ``<symbol>@bookTicker``, and the
  ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` methods.

A message that cannot be used raises :class:`WsError` (code, stable name, message, the
request id when one could be read); the gateway answers it as an error frame and keeps
the connection.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from tradex.projections.timescale import INTERVALS_BY_NAME

MESSAGE_BYTES_MAX = 4_096  # one client message
STREAMS_MAX = 1_024  # subscriptions on one connection (Binance's limit too)
DEPTH_DEFAULT = 100
DEPTH_MAX = 1_000
ID_TEXT_MAX = 64

PUBLIC_CHANNELS = ("book", "trades", "ticker")
PRIVATE_CHANNELS = ("orders", "fills", "balances")
CANDLES = "candles:"
INTERVALS = tuple(INTERVALS_BY_NAME)
OPS = ("subscribe", "unsubscribe", "auth", "ping")
BINANCE_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS")
_SYMBOL = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_STREAM = re.compile(r"^([a-z0-9-]{1,32})@([A-Za-z0-9_@]{1,32})$")
_DEPTH_SPEEDS = ("depth", "depth@100ms", "depth@1000ms")
_PARTIAL_DEPTH = re.compile(r"^depth(5|10|20)(@100ms|@1000ms)?$")
_SIMPLE_STREAMS = ("trade", "aggTrade", "ticker", "miniTicker", "bookTicker")


class WsError(Exception):
    """A client message the gateway refuses; the connection stays open."""

    def __init__(self, code: int, name: str, msg: str, request_id: Any = None) -> None:
        super().__init__(msg)
        self.code, self.name, self.msg, self.request_id = code, name, msg, request_id

    def frame(self) -> dict[str, Any]:
        """The TradeX error frame."""
        return {"type": "error", "code": self.code, "error": self.name, "msg": self.msg,
                "id": self.request_id}  # fmt: skip

    def binance_frame(self) -> dict[str, Any]:
        """Binance's shape for a refused method call."""
        return {"error": {"code": 2, "msg": self.msg}, "id": self.request_id}


BAD_MESSAGE = (-1102, "BAD_MESSAGE")
BAD_CHANNEL = (-1130, "BAD_CHANNEL")
BAD_SYMBOL = (-1121, "BAD_SYMBOL")
UNAUTHORIZED = (-1002, "UNAUTHORIZED")
TOO_MANY_STREAMS = (-1003, "TOO_MANY_STREAMS")


def _error(kind: tuple[int, str], msg: str, request_id: Any = None) -> WsError:
    return WsError(kind[0], kind[1], msg, request_id)


class NativeRequest(NamedTuple):
    op: str
    request_id: Any  # echoed: an int or a short text, or None
    channel: str | None = None  # book | trades | ticker | candles:<i> | orders | fills | balances
    symbol: str | None = None
    account_id: int | None = None
    depth: int = DEPTH_DEFAULT
    token: str | None = None
    api_key: str | None = None
    timestamp: int | None = None
    signature: str | None = None

    @property
    def private(self) -> bool:
        return self.channel in PRIVATE_CHANNELS


def _object(text: str | bytes) -> dict[str, Any]:
    if len(text) > MESSAGE_BYTES_MAX:
        raise _error(BAD_MESSAGE, f"A message is at most {MESSAGE_BYTES_MAX} bytes.")
    try:
        found = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _error(BAD_MESSAGE, f"The message is not JSON: {exc}.") from exc
    if not isinstance(found, dict):
        raise _error(BAD_MESSAGE, "A message must be a JSON object.")
    return found


def _request_id(found: dict[str, Any]) -> Any:
    value = found.get("id")
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and len(value) <= ID_TEXT_MAX:
        return value
    raise _error(BAD_MESSAGE, f"'id' must be an integer or a text of at most {ID_TEXT_MAX}.")


def _text(found: dict[str, Any], name: str, request_id: Any, pattern: re.Pattern[str]) -> str:
    value = found.get(name)
    if not isinstance(value, str) or not pattern.match(value):
        raise _error(BAD_MESSAGE, f"'{name}' is missing or malformed.", request_id)
    return value


def _int(found: dict[str, Any], name: str, request_id: Any, low: int, high: int) -> int | None:
    value = found.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _error(BAD_MESSAGE, f"'{name}' must be an integer in {low}..{high}.", request_id)
    return value


def channel_ok(channel: str) -> bool:
    if channel in PUBLIC_CHANNELS or channel in PRIVATE_CHANNELS:
        return True
    return channel.startswith(CANDLES) and channel[len(CANDLES) :] in INTERVALS


_TOKEN = re.compile(r"^[A-Za-z0-9._-]{1,4096}$")
_KEY = re.compile(r"^[A-Za-z0-9]{1,128}$")
_SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_native(text: str | bytes) -> NativeRequest:
    """One TradeX client message."""
    found = _object(text)
    request_id = _request_id(found)
    op = found.get("op")
    if op not in OPS:
        raise _error(BAD_MESSAGE, f"'op' must be one of {list(OPS)}.", request_id)
    if op == "ping":
        return NativeRequest("ping", request_id)
    if op == "auth":
        if "token" in found:
            return NativeRequest(
                "auth", request_id, token=_text(found, "token", request_id, _TOKEN)
            )
        api_key = _text(found, "apiKey", request_id, _KEY)
        timestamp = _int(found, "timestamp", request_id, 0, 1 << 62)
        if timestamp is None:
            raise _error(BAD_MESSAGE, "'timestamp' is missing (ms since the epoch).", request_id)
        signature = _text(found, "signature", request_id, _SIGNATURE)
        return NativeRequest("auth", request_id, api_key=api_key, timestamp=timestamp,
                             signature=signature)  # fmt: skip
    channel = found.get("channel")
    if not isinstance(channel, str) or not channel_ok(channel):
        raise _error(
            BAD_CHANNEL,
            f"'channel' must be one of {[*PUBLIC_CHANNELS, 'candles:<interval>', *PRIVATE_CHANNELS]}"
            f" (intervals {list(INTERVALS)}).",
            request_id,
        )
    if channel in PRIVATE_CHANNELS:
        account = _int(found, "accountId", request_id, 0, (1 << 63) - 1)
        return NativeRequest(op, request_id, channel, account_id=account)
    symbol = _text(found, "symbol", request_id, _SYMBOL)
    depth = _int(found, "depth", request_id, 1, DEPTH_MAX)
    return NativeRequest(op, request_id, channel, symbol, depth=depth or DEPTH_DEFAULT)


def signed_payload(api_key: str, timestamp: int) -> str:
    """What an API key signs to authenticate a connection (HMAC-SHA256, hex), in the
    Binance request style: ``apiKey=<key>&timestamp=<ms>``."""
    return f"apiKey={api_key}&timestamp={timestamp}"


class Stream(NamedTuple):
    """A Binance stream: ``name`` as the client wrote it (echoed in combined frames)."""

    name: str
    symbol: str  # as in the name (lower case)
    kind: str  # depth | partialDepth | trade | aggTrade | kline | ticker | miniTicker | bookTicker
    interval: str | None = None
    levels: int = 0  # partialDepth: 5, 10 or 20


def parse_stream(name: str, request_id: Any = None) -> Stream:
    match = _STREAM.match(name) if isinstance(name, str) else None
    if match is None:
        raise _error(BAD_CHANNEL, f"Invalid stream name {name!r}: <symbol>@<stream>.", request_id)
    symbol, what = match.group(1), match.group(2)
    if what in _DEPTH_SPEEDS:
        return Stream(name, symbol, "depth")
    partial = _PARTIAL_DEPTH.match(what)
    if partial is not None:
        return Stream(name, symbol, "partialDepth", levels=int(partial.group(1)))
    if what in _SIMPLE_STREAMS:
        return Stream(name, symbol, what)
    if what.startswith("kline_") and what[len("kline_") :] in INTERVALS:
        return Stream(name, symbol, "kline", what[len("kline_") :])
    raise _error(
        BAD_CHANNEL,
        f"Unsupported stream {name!r}: depth[@100ms|@1000ms], depth<5|10|20>[@100ms|@1000ms], "
        f"trade, aggTrade, ticker, miniTicker, bookTicker, kline_<{'|'.join(INTERVALS)}>.",
        request_id,
    )


def parse_stream_list(text: str) -> list[Stream]:
    """``a@trade/b@depth`` (a ``/ws/…`` path or ``/stream?streams=``)."""
    names = [n for n in text.split("/") if n]
    if not names:
        raise _error(BAD_CHANNEL, "No stream named.")
    if len(names) > STREAMS_MAX:
        raise _error(TOO_MANY_STREAMS, f"At most {STREAMS_MAX} streams on one connection.")
    return [parse_stream(n) for n in names]


class BinanceCall(NamedTuple):
    method: str
    streams: list[Stream]
    request_id: Any


def parse_binance(text: str | bytes) -> BinanceCall:
    """A Binance ``{"method", "params", "id"}`` message."""
    found = _object(text)
    request_id = _request_id(found)
    method = found.get("method")
    if method not in BINANCE_METHODS:
        raise _error(BAD_MESSAGE, f"'method' must be one of {list(BINANCE_METHODS)}.", request_id)
    if method == "LIST_SUBSCRIPTIONS":
        return BinanceCall(method, [], request_id)
    params = found.get("params")
    if not isinstance(params, list) or not params or len(params) > STREAMS_MAX:
        raise _error(BAD_MESSAGE, "'params' must be a list of stream names.", request_id)
    return BinanceCall(method, [parse_stream(p, request_id) for p in params], request_id)
