"""Binance's signed requests: what is signed, the time window (no I/O)."""

from __future__ import annotations

import hashlib
import hmac

from tradex.queries.signatures import in_window, split_signature, valid

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_binance_documented_example() -> None:
    # Binance's docs, "SIGNED endpoint examples": query and body mixed, no '&' between
    query = b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = b"quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    expected = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    payload, signature = split_signature(query, body + b"&signature=" + expected.encode())
    assert payload == query + body
    assert signature == expected
    assert valid(SECRET, payload, expected)
    assert not valid(SECRET, payload + b"x", expected)
    assert not valid(SECRET, payload, "zz")


def test_the_signature_anywhere_once() -> None:
    sig = hmac.new(b"k", b"a=1&b=2", hashlib.sha256).hexdigest()
    assert split_signature(f"signature={sig}&a=1&b=2".encode(), b"") == (b"a=1&b=2", sig)
    assert split_signature(b"a=1&b=2", b"")[1] is None
    assert split_signature(b"signature=a&signature=b", b"")[1] is None


def test_the_window() -> None:
    now = 1_700_000_000_000
    assert in_window(now, 5_000, now, 1_000)
    assert in_window(now - 5_000, 5_000, now, 1_000)
    assert not in_window(now - 5_001, 5_000, now, 1_000)  # stale
    assert in_window(now + 1_000, 5_000, now, 1_000)
    assert not in_window(now + 1_001, 5_000, now, 1_000)  # from the future
