"""The process's one LISTEN connection: hands every committed event to the open streams of its
audience.

The connection is dedicated (a pooled connection would lose its LISTEN on reset). asyncpg forgets
listeners when a connection dies and does not reconnect, so a supervisor loop does: it notices a
lost connection through a termination callback and a periodic keep-alive query, reconnects with
capped exponential backoff and jitter, LISTENs again, and then reads on from where it stopped.

A notification (`<id> <channel> <user>`, or `<id> <channel> \n<group>`, on the NOTIFY channel
`fastapi_pg_sse`) only wakes the listener: any role that can connect can NOTIFY, so what reaches
a stream is always read from the events table. The listener keeps one watermark for the process,
`delivered_through`: every event up to it was handed to the hub. Woken, it reads in one statement
(one snapshot) the events after it, of every channel, in id order, and the newest id of that
snapshot, and routes each to the streams subscribed to its audience as it hands it over.
Ids are given in commit order (see `fastapi_pg_sse.schema`), so every id up to that newest one
is visible in the snapshot: the watermark moves there once a page reaches it (a page that ends
below it is followed by the next), never past an event committed late, whatever a notification
claims. One order for every audience: a stream that reads its user's events, its groups' and its
channels' broadcasts, on several channels, gets them in id order.

Nor can a flood of notifications exhaust the process: however many arrive, they set one flag,
and a read serves all of those that came before it; foreign ones are counted, and warned about
at most once a minute.

Events of poll-delivery sessions (`fastapi_pg_sse.delivery` 'poll', schema 1.5) are queued
unnumbered and announced by no notification: every keep-alive period the listener numbers them
(`fastapi_pg_sse.sequence_queued`) and reads on, so they arrive late, never lost, and it warns
once that they do. `PollListener`, the `poll` read mode, does that every poll interval instead
of listening: it needs no notifying commit, and may read from a streaming replica.
"""

import asyncio
import contextlib
import logging
import math
import os
import random
import re
import socket
import time
from collections import Counter
from typing import Literal

import asyncpg
from pydantic import SecretStr

from fastapi_pg_sse.channel import (
    DATABASE_ERRORS,
    NEWEST,
    NEWEST_ID,
    REVOCATIONS,
    Event,
    fetch_committed_after,
    fetch_newest_committed,
)
from fastapi_pg_sse.hub import Hub
from fastapi_pg_sse.schema import SCHEMA, SchemaMismatch, check_schema

logger = logging.getLogger(__name__)

FOREIGN_WARNING_INTERVAL_SECONDS = 60.0
"""The least time between two warnings about foreign notifications."""
STREAMS_REPORT_SECONDS = 1.0
"""How often the listener looks whether the count of open streams changed since it last named
its connection after it (see `listener_name`)."""
_NAME_BYTES = 63
"""What PostgreSQL keeps of an `application_name`."""
_LISTENER_NAME = re.compile(r"realtime-listener:([0-9]+)(?: streams=([0-9]+))?(?: host=(.*))?")
"""A `listener_name`, or the `realtime-listener:<pid>` of a runtime before 0.8."""


class Wakeups:
    """What the pump has to do, each a flag: however many notifications come, they make one
    read; no queue grows with them."""

    def __init__(self) -> None:
        self.read = False
        """Events were announced: read on from the watermark."""
        self.ping = False
        """No notification came for a keep-alive period: check the connection."""
        self.report = False
        """The count of open streams changed: rename the connection."""
        self.sequence = False
        """A keep-alive period passed: number the queued events, and read on."""
        self.lost = False
        """The connection is lost."""
        self._event = asyncio.Event()

    def request(self, what: Literal["read", "ping", "report", "sequence", "lost"]) -> None:
        setattr(self, what, True)
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event.clear()


class Listener:
    """Runs the LISTEN connection in a background task and delivers events through `hub`."""

    def __init__(
        self,
        database_url: SecretStr,
        hub: Hub,
        *,
        keepalive_seconds: float,
        max_backoff_seconds: float,
        page_size: int,
        page_bytes: int,
    ) -> None:
        self._database_url = database_url
        """A secret until the moment of connecting: no repr or traceback of the listener shows
        its password."""
        self._hub = hub
        self._keepalive_seconds = keepalive_seconds
        self._max_backoff_seconds = max_backoff_seconds
        self._page_size = page_size
        self._page_bytes = page_bytes
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0
        self.foreign_notifications = 0
        self.delivered_through: int | None = None
        """Every event up to this id was handed to the hub (None before the first connection,
        which starts it at the newest id): the watermark the listener reads on from."""
        self._newest_seen = 0
        self._progress = asyncio.Event()
        """Set (and replaced) each time `newest_seen` changes: what `wait_to_see` waits on."""
        self._received = 0
        """Notifications received, for the keep-alive to tell an idle connection."""
        self._behind = False
        """The last read was a full page: more events wait to be read."""
        self._foreign_warned_at = -math.inf
        self._foreign_when_warned = 0
        self._named_after_streams = 0
        """The count of open streams the connection was last named (or renamed) after."""
        self._warned_of_queued = False
        """Whether it warned that it numbered queued events, which it delivers late."""

    @property
    def newest_seen(self) -> int:
        """The newest event id seen, on any channel, read from the table only: as it connects,
        at each keep-alive, and at each read. A stream opened while the database is
        unreachable resumes after it: never above the truth (a notification, which any role may
        send, could put it there, and clients would skip what lies between), at worst behind
        it, and the stream then replays a little more."""
        return self._newest_seen

    @newest_seen.setter
    def newest_seen(self, event_id: int) -> None:
        if event_id != self._newest_seen:
            self._newest_seen = event_id
            self._progress.set()  # wakes every `wait_to_see`, each looks again
            self._progress = asyncio.Event()

    async def wait_to_see(self, event_id: int, timeout: float) -> bool:
        """Wait until the listener has seen `event_id` (`newest_seen`), at most `timeout`
        seconds; return whether it did. Holds no connection: a stream that waits for a read
        database to replay an id (perhaps one a client made up) takes nothing from the others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._newest_seen < event_id:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)
        return True

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def caught_up(self) -> bool:
        """Connected, and its last read reached the newest event."""
        return self.connected and not self._behind

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task that runs the connection, reconnecting it; None before `start`."""
        return self._task

    async def start(self) -> None:
        """Connect and LISTEN; raise if that fails, so that start-up fails loudly.

        Raises `SchemaMismatch`, saying what to apply, when the database's schema is not one this
        runtime works with. Once this returns, every event committed from then on is delivered.
        """
        connection = await self._connect()
        try:
            wakeups = await self._listen(connection)
        except BaseException:
            self._release(connection)
            raise
        logger.info("realtime listener connected")
        self._task = asyncio.create_task(
            self._supervise(connection, wakeups), name="realtime-listener"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _supervise(
        self, connection: asyncpg.Connection | None, wakeups: Wakeups | None
    ) -> None:
        failures = 0
        while True:
            try:
                if connection is None or wakeups is None:
                    connection = await self._connect()
                    wakeups = await self._listen(connection)
                    self.reconnects += 1
                    logger.info(
                        "realtime listener reconnected after %d attempt(s)",
                        failures,
                        extra={"reconnects": self.reconnects},
                    )
                failures = 0  # only once listening and caught up
                await self._pump(connection, wakeups)
            except SchemaMismatch as error:
                problem = f"cannot listen: {error}"
            except DATABASE_ERRORS as error:  # its connection's: no traceback, one line
                problem = f"lost its connection: {error!r}"
            except Exception:
                # A bug must not end real-time delivery for the process: log it, start over.
                logger.exception("realtime listener failed")
                problem = "failed"
            finally:
                self._connected.clear()
                if connection is not None:
                    self._release(connection)
                    connection = wakeups = None
            failures += 1
            cap = min(self._max_backoff_seconds, 0.1 * 2 ** min(failures, 30))
            delay = random.uniform(cap / 2, cap)
            logger.warning("realtime listener %s; retrying in %.2f s", problem, delay)
            await asyncio.sleep(delay)

    async def _connect(self) -> asyncpg.Connection:
        return await self._connect_to(self._database_url)

    async def _connect_to(
        self, database_url: SecretStr, name: str | None = None
    ) -> asyncpg.Connection:
        """Connect, named `name`, or after the open streams (`listener_name`)."""
        if name is None:
            self._named_after_streams = self._hub.counters.open_streams
            name = listener_name(self._named_after_streams)
        connection: asyncpg.Connection = await asyncpg.connect(
            database_url.get_secret_value(), server_settings={"application_name": name}
        )
        # Whatever the server's or the role's default: numbering queued events while another
        # process does must see the others' commits (under repeatable read it fails to
        # serialize, and the listener reconnects). A query, not a startup parameter, which
        # PgBouncer refuses unless told to ignore it.
        await connection.execute(
            "SET default_transaction_isolation = 'read committed'",
            timeout=self._keepalive_seconds,
        )
        return connection

    def _release(self, connection: asyncpg.Connection) -> None:
        """Drop the connection(s) of a listening that failed or ended."""
        connection.terminate()

    async def _listen(self, connection: asyncpg.Connection) -> Wakeups:
        """Check the schema, LISTEN and read on from the watermark (from the newest id on the
        first connection); return what the notifications request."""
        await check_schema(connection, timeout=self._keepalive_seconds)
        wakeups = Wakeups()
        connection.add_termination_listener(lambda _: wakeups.request("lost"))
        await self._subscribe(connection, wakeups)
        await self._read_newest(connection)
        await self._await_read_database(connection)
        if self.delivered_through is None:  # the first connection: from now on
            self.delivered_through = self.newest_seen
        elif self.newest_seen < self.delivered_through:
            # A database restored from an older copy (or a failover that lost commits) gives
            # those ids again: read on from its newest, and let open streams take them.
            self.delivered_through = self.newest_seen
            self._hub.rewind(self.newest_seen)
        for name, delivered in (await self._read_on(connection)).items():
            logger.info(
                "realtime listener replayed the gap: %d event(s) on %s",
                delivered,
                name,
                extra={"channel": name, "events": delivered},
            )
        self._connected.set()
        return wakeups

    async def _await_read_database(self, connection: asyncpg.Connection) -> None:
        """Nothing to wait for: the listener reads where ids are given."""

    async def _subscribe(self, connection: asyncpg.Connection, wakeups: Wakeups) -> None:
        """LISTEN: each notification of ours requests a read."""

        def on_notification(_: object, __: int, ___: str, payload: object) -> None:
            self._received += 1
            if _announcement(str(payload)) is not None:
                wakeups.request("read")
            else:
                self._ignore_foreign()

        await connection.add_listener(SCHEMA, on_notification)

    def _ignore_foreign(self) -> None:
        """Count a notification that is not one of ours; warn, saying how many came since the
        last warning, at most once every `FOREIGN_WARNING_INTERVAL_SECONDS`."""
        self.foreign_notifications += 1
        now = time.monotonic()
        if now - self._foreign_warned_at < FOREIGN_WARNING_INTERVAL_SECONDS:
            return
        logger.warning(
            "realtime listener ignored %d foreign notification(s) since its last such warning"
            " (it warns at most once every %d s)",
            self.foreign_notifications - self._foreign_when_warned,
            FOREIGN_WARNING_INTERVAL_SECONDS,
        )
        self._foreign_warned_at = now
        self._foreign_when_warned = self.foreign_notifications

    async def _pump(self, connection: asyncpg.Connection, wakeups: Wakeups) -> None:
        """Do what is requested, until the connection is lost: under load, one read serves every
        notification that came before it. The connection is checked with a query after each
        keep-alive period without notifications."""
        timers = [
            asyncio.create_task(self._request_pings(wakeups), name="realtime-keepalive"),
            asyncio.create_task(self._request_reports(wakeups), name="realtime-reports"),
            asyncio.create_task(self._request_sequencing(wakeups), name="realtime-sequencing"),
        ]
        try:
            while not wakeups.lost:
                await wakeups.wait()
                if wakeups.ping:
                    wakeups.ping = False
                    await self._read_newest(connection)
                if wakeups.report:
                    wakeups.report = False
                    await self._report_streams(connection)
                if wakeups.sequence:
                    wakeups.sequence = False
                    await self._sequence_late(connection)
                    wakeups.read = True  # what another process numbered too: no notification
                if wakeups.read:
                    wakeups.read = False
                    await self._read_on(connection)
            raise ConnectionError("listener connection terminated")
        finally:
            for timer in timers:
                timer.cancel()

    async def _request_sequencing(self, wakeups: Wakeups) -> None:
        """Request the numbering of queued events every keep-alive period, notifications or
        not: poll-delivery sessions announce nothing."""
        while True:
            await asyncio.sleep(self._keepalive_seconds)
            wakeups.request("sequence")

    async def _sequence(self, connection: asyncpg.Connection) -> int:
        """Number the events queued by poll-delivery sessions that have committed (in the turn
        of notifying commits, so that ids keep following commit order); return how many."""
        sequenced: int = await connection.fetchval(
            "SELECT fastapi_pg_sse.sequence_queued()", timeout=self._keepalive_seconds
        )
        return sequenced

    async def _sequence_late(self, connection: asyncpg.Connection) -> None:
        """The notify mode's safety net: number what poll-delivery sessions queued, warning
        once that such events reach this process's streams up to a keep-alive period late. A
        role not granted `sequence_queued` leaves that to others, and is told once too."""
        try:
            sequenced = await self._sequence(connection)
        except asyncpg.InsufficientPrivilegeError:
            self._warn_of_queued("may not run fastapi_pg_sse.sequence_queued()")
            return
        if sequenced:
            self._warn_of_queued(f"numbered {sequenced} event(s) queued by poll-delivery sessions")

    def _warn_of_queued(self, problem: str) -> None:
        if not self._warned_of_queued:
            self._warned_of_queued = True
            logger.warning(
                "realtime listener %s: in notify read mode, the events of sessions whose"
                " fastapi_pg_sse.delivery is 'poll' reach streams up to"
                " REALTIME_KEEPALIVE_SECONDS late; set REALTIME_READ_MODE=poll (and grant"
                " EXECUTE on fastapi_pg_sse.sequence_queued() to the serving role)",
                problem,
            )

    async def _read_newest(self, connection: asyncpg.Connection) -> None:
        """Take up the newest id given out: the truth, even of a database restored from an older
        copy. The keep-alive's query, which checks the connection."""
        self.newest_seen = await connection.fetchval(
            f"SELECT {NEWEST_ID}", timeout=self._keepalive_seconds
        )

    async def _request_pings(self, wakeups: Wakeups) -> None:
        """Request a ping after each keep-alive period in which no notification came.

        One timer per period rather than a timeout on every wait for a notification: a timeout
        per wait is garbage the collector has to chase, at the rate of notifications.
        """
        while True:
            received = self._received
            await asyncio.sleep(self._keepalive_seconds)
            if self._received == received:
                wakeups.request("ping")

    async def _request_reports(self, wakeups: Wakeups) -> None:
        """Request a report, at most once every `STREAMS_REPORT_SECONDS`, when the count of open
        streams differs from the one the connection is named after: nothing on the path of a
        stream or an event, and a rename at most once a period."""
        while True:
            await asyncio.sleep(STREAMS_REPORT_SECONDS)
            if self._hub.counters.open_streams != self._named_after_streams:
                self._named_after_streams = self._hub.counters.open_streams
                wakeups.request("report")

    async def _report_streams(self, connection: asyncpg.Connection) -> None:
        """Rename the connection after the count of open streams now (see `listener_name`)."""
        self._named_after_streams = self._hub.counters.open_streams
        await connection.execute(
            "SELECT set_config('application_name', $1, false)",
            listener_name(self._named_after_streams),
            timeout=self._keepalive_seconds,
        )

    async def _read_on(self, connection: asyncpg.Connection) -> Counter[str]:
        """Hand the hub every event after the watermark (and the revocations), in id order, a
        page at a time, up to the newest id committed.

        Every channel's events are read, and routed to the streams subscribed as each is
        handed over: a stream that joined during a read gets the events of the read after
        the point it resumes from (the hub skips the others), so no read is ever made again,
        however often streams come and go. With no stream here, the watermark just moves to
        the newest id, unless a stream joined meanwhile: a stream that opens later replays from
        its own snapshot, taken after it joined the hub. Returns how many events of each
        channel it handed over.
        """
        assert self.delivered_through is not None, "set as the connection listens"
        handed_over: Counter[str] = Counter()
        timeout = self._keepalive_seconds  # a silent network must not hold a read for ever
        while True:
            if self._hub.counters.open_streams == 0:
                joins = self._hub.joins
                newest = await fetch_newest_committed(
                    connection, self.delivered_through, timeout=timeout
                )
                if self._hub.joins == joins:  # else read: the snapshot may predate its replay's
                    self.delivered_through = newest
                    self.newest_seen = max(self.newest_seen, newest)
                    self._behind = False
                    return handed_over
            page, newest = await fetch_committed_after(
                connection,
                self.delivered_through,
                limit=self._page_size,
                max_bytes=self._page_bytes,
                timeout=timeout,
            )
            for event in page.events:
                self._hand_over(event)
            handed_over.update(e.channel for e in page.events if e.channel != REVOCATIONS)
            self.delivered_through = page.events[-1].id if page.more else newest
            self.newest_seen = max(self.newest_seen, self.delivered_through)
            self._behind = page.more
            if not page.more:
                return handed_over

    def _hand_over(self, event: Event) -> None:
        """Publish an event; a revocation ends its user's streams opened before it."""
        if event.channel != REVOCATIONS:
            self._hub.publish(event)
        elif ended := self._hub.revoke(event.target_user_id, event.id):
            logger.info(
                "realtime streams revoked: %d", ended, extra={"user_id": event.target_user_id}
            )


class PollListener(Listener):
    """The `poll` read mode: no LISTEN. Every `poll_interval_seconds` it numbers the queued
    events on the primary (`fastapi_pg_sse.sequence_queued`, which commits before the read) and
    reads on from the watermark on the read database, the primary's streaming replica or the
    primary itself: ids are given in commit order on the primary, and a replica replays commits
    in that order, so every id up to the newest one a snapshot sees is in it, as for LISTEN."""

    def __init__(
        self,
        database_url: SecretStr,
        hub: Hub,
        *,
        read_database_url: SecretStr | None,
        poll_interval_seconds: float,
        keepalive_seconds: float,
        max_backoff_seconds: float,
        page_size: int,
        page_bytes: int,
    ) -> None:
        super().__init__(
            database_url,
            hub,
            keepalive_seconds=keepalive_seconds,
            max_backoff_seconds=max_backoff_seconds,
            page_size=page_size,
            page_bytes=page_bytes,
        )
        self._read_database_url = read_database_url
        self._poll_interval_seconds = poll_interval_seconds
        self._sequencer: asyncpg.Connection | None = None
        """The primary's connection that numbers queued events: the read connection itself when
        there is no read database."""

    async def _connect(self) -> asyncpg.Connection:
        """Connect to the primary, to sequence, and to the read database, to read. A sequencer
        of its own is named `sequencer_name`: it reads nothing and holds no stream, and
        `python -m fastapi_pg_sse stats` lists the process once, by its read connection."""
        if self._read_database_url is None:
            self._sequencer = await self._connect_to(self._database_url)
            return self._sequencer
        self._sequencer = await self._connect_to(self._database_url, sequencer_name())
        try:
            return await self._connect_to(self._read_database_url)
        except BaseException:
            self._sequencer.terminate()
            self._sequencer = None
            raise

    def _release(self, connection: asyncpg.Connection) -> None:
        super()._release(connection)
        if self._sequencer is not None and self._sequencer is not connection:
            self._sequencer.terminate()
        self._sequencer = None

    async def _await_read_database(self, connection: asyncpg.Connection) -> None:
        """On reconnecting to a read database behind what was delivered (another standby, or
        one that lagged more), wait for it to catch up, up to a keep-alive period, then fail
        the attempt (to retry), rather than lower the watermark and hand open streams the same
        events again. Only a primary itself behind (restored from an older copy) lowers it."""
        delivered = self.delivered_through
        if delivered is None or self._sequencer is None or self._sequencer is connection:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._keepalive_seconds
        while self.newest_seen < delivered:
            on_primary = await self._sequencer.fetchval(
                f"SELECT {NEWEST_ID}", timeout=self._keepalive_seconds
            )
            if on_primary < delivered:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ConnectionError(
                    f"the read database is behind what was delivered ({self.newest_seen}"
                    f" < {delivered}): waiting for it to catch up"
                )
            await asyncio.sleep(min(self._poll_interval_seconds, remaining))
            await self._read_newest(connection)

    async def _subscribe(self, connection: asyncpg.Connection, wakeups: Wakeups) -> None:
        """No LISTEN; a lost primary connection is a lost listener too, and one that may not
        sequence fails at once, saying so."""
        assert self._sequencer is not None, "connected"
        if self._sequencer is not connection:
            self._sequencer.add_termination_listener(lambda _: wakeups.request("lost"))
        await self._sequence(self._sequencer)

    async def _pump(self, connection: asyncpg.Connection, wakeups: Wakeups) -> None:
        """Sequence and read on, every poll interval, until a connection is lost."""
        assert self._sequencer is not None, "connected"
        reports = asyncio.create_task(self._request_reports(wakeups), name="realtime-reports")
        try:
            while not wakeups.lost:
                if wakeups.report:
                    wakeups.report = False
                    await self._report_streams(connection)
                await self._sequence(self._sequencer)
                await self._read_on(connection)
                await asyncio.sleep(self._poll_interval_seconds)
            raise ConnectionError("listener connection terminated")
        finally:
            reports.cancel()


def _announcement(payload: str) -> tuple[int, str, str] | None:
    """What a notification of ours announces: an event id, its channel and its audience (a user
    id, or `\n<group>`, `\n` alone for everyone); None for another's."""
    try:
        raw_id, channel, audience = payload.split(" ", 2)
        event_id = int(raw_id)
    except ValueError:
        return None
    return (event_id, channel, audience) if 0 < event_id <= NEWEST else None


def listener_name(streams: int) -> str:
    """The `application_name` of the process's LISTEN connection, as `pg_stat_activity` shows
    it: `realtime-listener:<pid> streams=<open streams> host=<host name>`, the host name cut to
    fit the 63 bytes PostgreSQL keeps."""
    name = f"realtime-listener:{os.getpid()} streams={streams} host={socket.gethostname()}"
    return name.encode("ascii", "replace")[:_NAME_BYTES].decode("ascii")


def sequencer_name() -> str:
    """The `application_name` of a poll listener's own connection to the primary, which numbers
    queued events while it reads from a read database: `realtime-sequencer:<pid>`, which
    `parse_listener_name` does not take for a listener."""
    return f"realtime-sequencer:{os.getpid()}"


def parse_listener_name(name: str) -> tuple[int, int | None, str] | None:
    """The pid, open streams (None from a runtime before 0.8, which did not say) and host
    (perhaps cut short; empty if not said) of a `listener_name`; None for another connection's
    name."""
    match = _LISTENER_NAME.fullmatch(name)
    if match is None:
        return None
    streams = None if match.group(2) is None else int(match.group(2))
    return int(match.group(1)), streams, match.group(3) or ""
