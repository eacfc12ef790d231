"""`Last-Event-ID`, whatever its bytes: a 200 stream (perhaps opening with a `reset` event) or a
400, never a 500 and never a hang.

The header goes over a raw socket, since HTTP clients refuse to send most byte values. A byte
HTTP forbids in a header (CR, LF, NUL...) may be refused by uvicorn itself, with a 400 too.
"""

import asyncio
import json
import re
from functools import partial
from urllib.parse import urlsplit

import anyio
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from fastapi_pg_sse.testing import Server, sign_token
from tests.app import STREAM

_PIECES = [
    b"0",
    b"7",
    b"00",
    b"9" * 18,  # the largest id accepted
    b"9" * 19,  # beyond a bigint
    b"9223372036854775807",
    b"9223372036854775808",
    b"1" * 40,
    b"-",
    b"+",
    b" ",
    b"\t",
    b"_",
    b".",
    b"e",
    b"0x",
    "²".encode(),
    "¹²³".encode(),
    "٣".encode(),
    "\N{FULLWIDTH DIGIT SEVEN}".encode(),
    # Latin-1, which is how Starlette decodes header bytes: these arrive as '²', '¹²³'.
    "²".encode("latin-1"),
    "¹²³".encode("latin-1"),
]
"""Bits of ids that are almost right: other scripts' digits, signs, separators, huge numbers."""

_NEAR_IDS = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=6).map(b"".join)
_NUMBERS = st.integers(min_value=-(10**30), max_value=10**30).map(lambda n: str(n).encode())
_DIGIT_RUNS = st.text(alphabet="0123456789", min_size=1, max_size=5000).map(str.encode)
_PADDING = st.sampled_from([b"", b" ", b"\t", b" \t ", b"\t\t"])

LAST_EVENT_IDS = st.one_of(
    st.binary(),
    _NEAR_IDS,
    st.tuples(_PADDING, st.one_of(_NUMBERS, _DIGIT_RUNS, _NEAR_IDS), _PADDING).map(b"".join),
)

_BAD_REQUEST_BODIES = [
    b'{"detail":"Last-Event-ID must be an event id."}',  # the app's
    b"Invalid HTTP request received.",  # uvicorn's, for a value HTTP forbids
]
_FIELD_LINE = re.compile(rb"(?:id|event|data|retry): [^\r\n]*|:[^\r\n]*")
_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def _check_well_formed_sse(body: bytes) -> None:
    """`body`, the start of a stream, holds whole frames of SSE fields, the first the opening
    frame (the id it resumes after and the retry hint) and a `reset`, if any, right after it;
    what follows the last whole frame is left unread."""
    *frames, _unfinished = body.split(b"\n\n")
    assert frames, f"no whole frame in {body!r}"
    b"\n\n".join(frames).decode("utf-8")  # raises if the whole frames are not text
    for frame in frames:
        for line in frame.split(b"\n"):
            assert _FIELD_LINE.fullmatch(line), f"not an SSE field: {line!r} in {body!r}"
    assert re.fullmatch(rb"id: [0-9]+\nretry: [0-9]+", frames[0]), f"no opening frame: {body!r}"
    for position, frame in enumerate(frames):
        if b"\nevent: reset\n" in b"\n" + frame + b"\n":
            assert position == 1, f"a reset that does not follow the opening frame: {body!r}"
            event("a reset")
            fields = dict(line.split(b": ", 1) for line in frame.split(b"\n"))
            assert re.fullmatch(rb"[0-9]+", fields[b"id"]), frame
            assert json.loads(fields[b"data"]) == {"replayable": False}, frame


async def _body_until_first_frame(reader: asyncio.StreamReader, chunked: bool) -> bytes:
    """The response body, read until a whole frame (a blank line) arrived or the body ended."""
    body = b""
    while b"\n\n" not in body:
        if chunked:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            assert await reader.readexactly(2) == b"\r\n"
        else:
            data = await reader.read(65536)
            if not data:
                break
            body += data
    return body


async def _open_with_last_event_id(server: Server, value: bytes) -> None:
    """Open a stream with `value` as `Last-Event-ID`; check the response and hang up."""
    host, port = urlsplit(server.url).netloc.split(":")
    authorization = f"Authorization: Bearer {sign_token('last-event-id-prober', expires_in=3600)}"
    with anyio.fail_after(30):  # only to report a hang: each request takes milliseconds
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(
                f"GET {STREAM} HTTP/1.1\r\nHost: {host}\r\n{authorization}\r\n".encode()
                + b"Last-Event-ID: "
                + value
                + b"\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = _STATUS_LINE.match(head)
            assert status, f"not an HTTP/1.1 response: {head!r}"
            assert status[1] in (b"200", b"400"), head
            event(f"status {status[1].decode()}")  # the mix, in --hypothesis-show-statistics
            if status[1] == b"200":
                chunked = b"\r\ntransfer-encoding: chunked\r\n" in head.lower()
                _check_well_formed_sse(await _body_until_first_frame(reader, chunked))
            else:
                # uvicorn's own 400 sends no length: its body ends when it hangs up.
                length = re.search(rb"\r\ncontent-length: ([0-9]+)\r\n", head.lower())
                body = await (reader.readexactly(int(length[1])) if length else reader.read())
                assert body in _BAD_REQUEST_BODIES, head + body
        finally:
            writer.close()
            await writer.wait_closed()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=LAST_EVENT_IDS)
@example(value=b"")
@example(value=b"9" * 20_000)  # beyond the 4300 digits int() reads
def test_any_last_event_id_bytes_get_a_stream_or_a_400_never_a_500_or_a_hang(
    realtime_server: Server, value: bytes
) -> None:
    """Each example runs on an event loop of its own; the session's server serves them all."""
    anyio.run(partial(_open_with_last_event_id, realtime_server, value))
