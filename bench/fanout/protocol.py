"""The benchmark's server protocol (see the README's "Benchmarks"): what every server under test
is given, how clients sign in, and what an event carries."""

import time

import jwt

PEER_CHANNEL = "bench_peer"
"""The NOTIFY channel the peers LISTEN on."""
TOKEN_SECONDS = 3600
"""Tokens outlive any run: no stream ends at its token's expiry during a measurement."""


def user_of(connection: int, users: int) -> str:
    """The user the `connection`-th client signs in as."""
    return f"u{connection % users}"


def token(user: str, secret: str) -> str:
    """An HS256 JWT for `user`, as every server under test verifies it."""
    claims = {"sub": user, "exp": int(time.time()) + TOKEN_SECONDS}
    return jwt.encode(claims, secret, algorithm="HS256")


def event_data(user: str, seq: int) -> dict[str, object]:
    """An event's `data`: its target (checked by the client), a sequence number, and when it was
    sent (the client's latency)."""
    return {"user": user, "seq": seq, "sent_at": time.time()}
