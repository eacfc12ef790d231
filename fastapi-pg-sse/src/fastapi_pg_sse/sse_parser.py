"""Reading the Server-Sent Events wire format, as the HTML standard says `EventSource` does.

The consumer reads its streams with this rather than with `httpx-sse`, which drops comment
lines: the runtime's heartbeats are comments, and a heartbeat tells the consumer that a
connection works (see `fastapi_pg_sse.consumer`).
"""

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")
"""What ends a line: CRLF, LF or CR, and nothing else (not U+2028, as `str.splitlines` has it)."""
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Dispatched:
    """An event: its type (`message` when the stream names none), its `data` lines joined with
    LF, and the last `id` the stream set (it holds until another replaces it)."""

    type: str
    data: str
    id: str | None


@dataclass(frozen=True, slots=True)
class RetryHint:
    """A `retry:` line: the reconnection delay the server asks for."""

    milliseconds: int


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment line (`: keep-alive`), which servers send as a heartbeat: its text."""

    text: str


Found = Dispatched | RetryHint | Comment
"""What a stream holds, for its reader."""


class SseParser:
    """Reads a stream's bytes, however they are split into chunks: UTF-8 (a character split
    across chunks kept whole, a leading byte order mark dropped); lines end with CRLF, LF or CR;
    `:` starts a comment; `data` lines join with LF; an event is dispatched at an empty line."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._pending = ""
        """The start of a line whose end has not arrived yet."""
        self._after_carriage_return = False
        self._type = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[Found]:
        """What the next chunk of the stream completes, in order."""
        text = self._decoder.decode(chunk)
        if self._after_carriage_return and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF whose CR ended the line
            self._after_carriage_return = False
        if text:
            self._after_carriage_return = text.endswith("\r")
        *lines, self._pending = _LINE_END.split(self._pending + text)
        found: list[Found] = []
        for line in lines:
            if (item := self._line(line)) is not None:
                found.append(item)
        return found

    def _line(self, line: str) -> Found | None:
        if not line:
            return self._dispatch()
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if not name:
            return Comment(value)
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and _DIGITS.fullmatch(value):
            return RetryHint(int(value))
        return None

    def _dispatch(self) -> Dispatched | None:
        event_type, data = self._type or "message", self._data
        self._type, self._data = "", []
        return Dispatched(event_type, "\n".join(data), self._id) if data else None
