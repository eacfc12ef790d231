"""The consumer's SSE parser reads the wire format as `EventSource` does, however the bytes are
split into chunks: the cases the TypeScript client's parser is tested with."""

import pytest

from fastapi_pg_sse.sse_parser import Comment, Dispatched, Found, RetryHint, SseParser

CASES: dict[str, tuple[list[bytes], list[Found]]] = {
    "split-mid-line": (
        [b"event: stock_upd", b'ated\ndata: {"id"', b": 1}\nid: 7\n", b"\n"],
        [Dispatched("stock_updated", '{"id": 1}', "7")],
    ),
    "crlf-split-across-chunks": (
        [b"data: a\r", b"\ndata: b\r\n\r", b"\n", b"data: c\r\n\r\n"],
        [Dispatched("message", "a\nb", None), Dispatched("message", "c", None)],
    ),
    "cr-endings": ([b"data: a\rdata: b\r\r"], [Dispatched("message", "a\nb", None)]),
    "utf8-character-split-across-chunks": (
        [b"data: caf\xc3", b"\xa9 \xe2\x82", b"\xac \xf0\x9f", b"\x98\x80\n\n"],
        [Dispatched("message", "caf\u00e9 \u20ac \U0001f600", None)],
    ),
    "line-separators-inside-data": (
        ["data: a\u2028b\u0085c\x0bd\n\n".encode()],
        [Dispatched("message", "a\u2028b\u0085c\x0bd", None)],
    ),
    "byte-order-mark": ([b"\xef\xbb", b"\xbfdata: z\n\n"], [Dispatched("message", "z", None)]),
    "multi-line-data": (
        [b"data: first\ndata:second\ndata:  third\ndata\n\n"],
        [Dispatched("message", "first\nsecond\n third\n", None)],
    ),
    "comment-and-retry": (
        [b": keep-alive\n", b"retry: 2500\nretry: soon\n\n:\n\n"],
        [Comment("keep-alive"), RetryHint(2500), Comment("")],
    ),
    "id-holds-and-type-resets": (
        [b"id: 5\nevent: a\ndata: x\n\ndata: y\n\nid: 6\0\nevent: b\n\ndata: z\n\n"],
        [
            Dispatched("a", "x", "5"),
            Dispatched("message", "y", "5"),
            Dispatched("message", "z", "5"),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_parser_reads_events_however_the_bytes_are_split(case: str) -> None:
    chunks, expected = CASES[case]
    parser = SseParser()
    assert [found for chunk in chunks for found in parser.feed(chunk)] == expected
