"""The `poll` read mode and poll delivery (schema 1.5): a session whose `fastapi_pg_sse.delivery`
is 'poll' queues its events and takes no turn at commit; a listener in poll mode numbers them
(`sequence_queued`) and delivers every event once, in id order, whichever way it was emitted; a
listener in notify mode numbers them too, at its keep-alive."""

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import asyncpg
import pytest
from pydantic import SecretStr

from fastapi_pg_sse.schema import (
    SchemaVersion,
    creation_sql,
    downgrade_sql,
    migration_sql,
    statements,
)
from fastapi_pg_sse.testing import TEST_JWT_SECRET, connected, next_event, open_stream, sign_token
from tests.app import FEED, STREAM
from tests.helpers import (
    blocking_pids,
    frame_ids,
    new_database,
    new_users,
    read_frames,
    running_kernel,
    serving,
    subscribe,
    wait_until,
)
from tests.test_database_roles import database_with_roles

pytestmark = pytest.mark.anyio

POLL = "SET fastapi_pg_sse.delivery = 'poll'"


@asynccontextmanager
async def emitters(database_url: str) -> AsyncIterator[tuple[asyncpg.Connection, ...]]:
    """A connection whose session delivers by poll, and one that delivers by NOTIFY."""
    async with connected(database_url) as polling, connected(database_url) as notifying:
        await polling.execute(POLL)
        yield polling, notifying


async def emit_mixed(
    polling: asyncpg.Connection, notifying: asyncpg.Connection, user: str, group: str
) -> None:
    """Transactions of both delivery modes, interleaved, to a user, a group and everyone."""
    for round_ in range(3):
        for connection in (polling, notifying):
            async with connection.transaction():
                await FEED.emit(connection, target_user_id=user, event_type=f"to_user_{round_}")
                await connection.execute(
                    "SELECT fastapi_pg_sse.emit_to_group($1, $2, 'to_group', 'null')",
                    FEED.name,
                    group,
                )
                await connection.execute(
                    "SELECT fastapi_pg_sse.broadcast($1, 'to_everyone', 'null')", FEED.name
                )


async def audience_ids(connection: asyncpg.Connection, user: str, group: str) -> list[int]:
    """The ids of the user's, the group's and everyone's events of FEED, in id order."""
    ids: list[int] = await connection.fetchval(
        "SELECT array_agg(id ORDER BY id) FROM fastapi_pg_sse.events WHERE channel = $1"
        " AND (target_user_id = $2 OR target_group = $3"
        " OR (target_user_id = '' AND target_group = ''))",
        FEED.name,
        user,
        group,
    )
    return ids


async def test_poll_mode_delivers_every_event_once_in_order_live_and_on_replay(
    realtime_postgres_url: str, pytestconfig: pytest.Config
) -> None:
    """Emitters of both delivery modes, mixed: the stream of a user in a group gets the user's,
    the group's and everyone's events, each once, in id order, and so does a stream that
    resumes from before them; another user gets only everyone's."""
    [user, other] = new_users("poller", "other")
    group = f"team_{user}"
    async with new_database(realtime_postgres_url) as url:
        environment = {
            "DATABASE_URL": url,
            "REALTIME_JWT_SECRET": TEST_JWT_SECRET,
            "REALTIME_READ_MODE": "poll",
        }
        async with (
            serving("tests.app:app", pytestconfig.rootpath, environment) as server,
            open_stream(server.url + STREAM, sign_token(user, groups=[group])) as live,
            open_stream(server.url + STREAM, sign_token(other)) as others,
            emitters(url) as (polling, notifying),
        ):
            await emit_mixed(polling, notifying, user, group)

            async def numbered() -> bool:
                queued = await polling.fetchval("SELECT count(*) FROM fastapi_pg_sse.queued_events")
                return bool(queued == 0)

            await wait_until(numbered, "the listener numbered every queued event")
            expected = await audience_ids(polling, user, group)
            everyone = await audience_ids(polling, other, "no group")
            delivered = [int((await next_event(live)).id) for _ in expected]
            delivered_to_other = [int((await next_event(others)).id) for _ in everyone]
            async with open_stream(
                server.url + STREAM, sign_token(user, groups=[group]), last_event_id="0"
            ) as replay:
                replayed = [int((await next_event(replay)).id) for _ in expected]
    assert len(expected) == 18 and len(everyone) == 6
    assert delivered == replayed == expected == sorted(set(expected))
    assert delivered_to_other == everyone


async def test_a_poll_delivery_emit_commits_while_the_commit_turn_is_held(
    realtime_database_url: str,
) -> None:
    """While another transaction holds `commit_order` (as a NOTIFY-delivery commit does during
    its turn), a poll-delivery session emits and commits without waiting; its event is numbered
    by `sequence_queued` once the turn is free, after every id given before."""
    [user] = new_users("unlocked")
    async with (
        connected(realtime_database_url) as holder,
        emitters(realtime_database_url) as (polling, _),
    ):
        async with holder.transaction():
            await holder.execute("LOCK TABLE fastapi_pg_sse.commit_order IN EXCLUSIVE MODE")
            with anyio.fail_after(30):
                async with polling.transaction():
                    await FEED.emit(polling, target_user_id=user, event_type="queued")
            assert await blocking_pids(holder, polling.get_server_pid()) == []
            before = await holder.fetchval("SELECT max(id) FROM fastapi_pg_sse.events")
        assert await polling.fetchval("SELECT fastapi_pg_sse.sequence_queued()") >= 1
        row = await polling.fetchrow(
            "SELECT id, type FROM fastapi_pg_sse.events WHERE target_user_id = $1", user
        )
    assert row is not None and row["type"] == "queued" and row["id"] > (before or 0)


async def test_a_notify_listener_delivers_queued_events_late_at_its_keepalive_and_warns_once(
    realtime_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A process in notify mode gets no notification of a poll-delivery commit: it numbers the
    queued events at its keep-alive, delivers them, and says once why they were late."""
    [user] = new_users("late")
    caplog.set_level(logging.WARNING)
    async with (
        new_database(realtime_postgres_url) as url,
        running_kernel(url, keepalive_seconds=0.2) as realtime,
        emitters(url) as (polling, _),
    ):
        subscriber = subscribe(realtime, user)
        for number in range(2):
            async with polling.transaction():
                await FEED.emit(polling, target_user_id=user, event_type=f"late_{number}")
        frames = await read_frames(subscriber, 2)
        ids = await polling.fetchval(
            "SELECT array_agg(id ORDER BY id) FROM fastapi_pg_sse.events WHERE target_user_id = $1",
            user,
        )
    assert frame_ids(frames) == ids and len(ids) == 2
    warnings = [r.message for r in caplog.records if "poll-delivery sessions" in r.message]
    assert len(warnings) == 1 and "REALTIME_READ_MODE=poll" in warnings[0]


async def test_the_poll_listener_delivers_to_the_hub_without_listening(
    realtime_postgres_url: str,
) -> None:
    """In poll mode the kernel's listener holds no LISTEN; a poll-delivery emit reaches a
    subscriber in order with a notifying one."""
    [user] = new_users("hub")
    async with (
        new_database(realtime_postgres_url) as url,
        running_kernel(url, read_mode="poll", poll_interval_seconds=0.01) as realtime,
        emitters(url) as (polling, notifying),
    ):
        subscriber = subscribe(realtime, user)
        for connection in (polling, notifying, polling):
            async with connection.transaction():
                await FEED.emit(connection, target_user_id=user, event_type="mixed")
        frames = await read_frames(subscriber, 3)
        listening = await notifying.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE 'LISTEN%'"
        )

        async def caught_up() -> bool:
            return realtime.listener.caught_up

        await wait_until(caught_up, "the poll listener caught up")
    assert frame_ids(frames) == sorted(set(frame_ids(frames))) and len(frame_ids(frames)) == 3
    assert listening == 0


async def test_a_role_that_may_emit_emits_by_poll_and_the_serving_role_numbers_the_events(
    realtime_postgres_url: str,
) -> None:
    """With the README's grants: the emitting role, and a role that only writes a watched table,
    queue their events in a poll-delivery session; the streaming role numbers them; a role
    without grants may not."""
    async with database_with_roles(realtime_postgres_url) as (url, roles):
        for role, statement in (
            ("emitting_role", "SELECT fastapi_pg_sse.emit('notes', 'ada', 'note_sent', '{}')"),
            ("writer", "INSERT INTO notes (owner) VALUES ('ola')"),
        ):
            async with connected(roles[role]) as connection:
                await connection.execute(POLL)
                await connection.execute(statement)
        async with connected(roles["nobody"]) as nobody:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await nobody.execute("SELECT fastapi_pg_sse.sequence_queued()")
        async with connected(url) as owner:
            queued = await owner.fetchval("SELECT count(*) FROM fastapi_pg_sse.queued_events")
        async with connected(roles["streaming_role"]) as streaming:
            sequenced = await streaming.fetchval("SELECT fastapi_pg_sse.sequence_queued()")
            events = await streaming.fetchval(
                "SELECT array_agg(format('%s %s', target_user_id, type) ORDER BY id)"
                " FROM fastapi_pg_sse.events WHERE channel = 'notes'"
            )
    assert (queued, sequenced) == (2, 2)
    assert events == ["ada note_sent", "ola note_created"]


async def test_the_1_5_migration_lets_the_roles_that_read_events_number_them(
    realtime_postgres_url: str,
) -> None:
    """A database at 1.4 whose serving role reads events: after the upgrade, that role may run
    `sequence_queued`, as its listener does at each keep-alive; a role that reads nothing may
    not."""
    reader, other = (f"{role}_{uuid.uuid4().hex[:8]}" for role in ("reader", "other"))
    async with connected(realtime_postgres_url) as admin:
        for role in (reader, other):
            await admin.execute(f"CREATE ROLE {role}")
    try:
        async with new_database(realtime_postgres_url, schema=False) as url, connected(url) as db:
            await db.execute(
                creation_sql(SchemaVersion(1, 4))
                + f"GRANT USAGE ON SCHEMA fastapi_pg_sse TO {reader}, {other};"
                f"GRANT SELECT ON fastapi_pg_sse.events TO {reader};"
                + migration_sql(SchemaVersion(1, 5))
            )
            may = await db.fetchrow(
                "SELECT has_function_privilege($1, 'fastapi_pg_sse.sequence_queued()', 'EXECUTE'),"
                " has_function_privilege($2, 'fastapi_pg_sse.sequence_queued()', 'EXECUTE')",
                reader,
                other,
            )
    finally:
        async with connected(realtime_postgres_url) as admin:
            for role in (reader, other):
                await admin.execute(f"DROP ROLE {role}")
    assert may is not None and tuple(may) == (True, False)


async def test_a_notify_listener_not_granted_sequence_queued_says_so_once_and_keeps_delivering(
    realtime_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A serving role set up without the grant: its notify listener cannot number queued
    events, warns once saying what to grant, and still delivers what NOTIFY announces."""
    [user] = new_users("ungranted")
    caplog.set_level(logging.WARNING)
    async with database_with_roles(realtime_postgres_url) as (url, roles):
        async with connected(url) as owner:
            await owner.execute(
                "REVOKE EXECUTE ON FUNCTION fastapi_pg_sse.sequence_queued() FROM"
                f" {urlsplit(roles['streaming_role']).username}"
            )
        async with (
            running_kernel(roles["streaming_role"], keepalive_seconds=0.2) as realtime,
            connected(url) as owner,
        ):
            subscriber = subscribe(realtime, user)

            async def warned() -> bool:
                return any("may not run" in record.message for record in caplog.records)

            await wait_until(warned, "the listener said it may not number queued events")
            async with owner.transaction():
                await FEED.emit(owner, target_user_id=user, event_type="notified")
            frames = await read_frames(subscriber, 1)
    assert b"event: notified" in frames
    [warning] = [record.message for record in caplog.records if "may not run" in record.message]
    assert "grant EXECUTE on fastapi_pg_sse.sequence_queued() to the serving role" in warning


async def test_disconnect_writes_on_the_primary_when_streams_read_from_a_read_only_database(
    realtime_postgres_url: str,
) -> None:
    """With a read database (here the same one, read-only, as a replica is),
    `realtime.disconnect` still revokes: it writes through `DATABASE_URL`."""
    [user] = new_users("revoked")
    async with new_database(realtime_postgres_url) as url:
        read_only = f"{url}?default_transaction_read_only=on"
        async with running_kernel(
            url, read_mode="poll", read_database_url=SecretStr(read_only)
        ) as realtime:
            subscriber = subscribe(realtime, user)
            async with realtime.pool.acquire() as pooled:
                with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                    await pooled.execute("SELECT fastapi_pg_sse.disconnect($1)", user)
            await realtime.disconnect(user)

            async def revoked() -> bool:
                return subscriber.closed

            await wait_until(revoked, "the poll listener read the revocation and ended the stream")


async def test_undoing_1_5_numbers_the_queued_events_first(realtime_postgres_url: str) -> None:
    """Events a poll-delivery session committed, not yet numbered, are in `events` after the
    downgrade, in their order, and nothing is queued any more."""
    async with new_database(realtime_postgres_url) as url, emitters(url) as (polling, _):
        async with polling.transaction():
            for number in range(3):
                await FEED.emit(polling, target_user_id="kept", event_type=f"queued_{number}")
        async with polling.transaction():  # as migrations run: one transaction
            await polling.execute(downgrade_sql(SchemaVersion(1, 5)))
        kept = await polling.fetchval(
            "SELECT array_agg(type ORDER BY id) FROM fastapi_pg_sse.events"
            " WHERE target_user_id = 'kept'"
        )
        queued = await polling.fetchval("SELECT to_regclass('fastapi_pg_sse.queued_events')")
    assert kept == ["queued_0", "queued_1", "queued_2"]
    assert queued is None


async def test_undoing_1_5_statement_by_statement_loses_no_event_queued_meanwhile(
    realtime_postgres_url: str,
) -> None:
    """Run statement by statement (`psql -f` without a single transaction), with a poll-delivery
    emit committed after each statement: every event is in `events` after the downgrade. When
    the queued events were numbered before `record` stopped queueing, one queued in between was
    dropped with the table."""
    async with new_database(realtime_postgres_url) as url, emitters(url) as (polling, migrator):
        await FEED.emit(polling, target_user_id="kept", event_type="before")
        expected = ["before"]
        for number, statement in enumerate(statements(downgrade_sql(SchemaVersion(1, 5)))):
            await migrator.execute(statement)
            await FEED.emit(polling, target_user_id="kept", event_type=f"after_{number}")
            expected.append(f"after_{number}")
        kept = await polling.fetchval(
            "SELECT array_agg(type ORDER BY id) FROM fastapi_pg_sse.events"
            " WHERE target_user_id = 'kept'"
        )
    assert sorted(kept) == sorted(expected)  # each once; "before" numbered by the downgrade


async def test_poll_listeners_number_and_read_under_a_repeatable_read_default(
    realtime_postgres_url: str,
) -> None:
    """A database whose sessions default to repeatable read: the listener's sessions read
    committed, whatever the default, so that two processes' listeners waiting for the commit
    turn together to number the same queued event (each with a snapshot taken before the turn)
    deliver it once and never reconnect: under repeatable read the second failed to serialize."""
    [user] = new_users("repeatable")
    async with new_database(realtime_postgres_url) as url:
        async with connected(url) as admin:
            database = await admin.fetchval("SELECT current_database()")
            await admin.execute(
                f'ALTER DATABASE "{database}"'
                " SET default_transaction_isolation = 'repeatable read'"
            )
        async with (
            running_kernel(url, read_mode="poll", poll_interval_seconds=0.005) as first,
            running_kernel(url, read_mode="poll", poll_interval_seconds=0.005) as second,
            emitters(url) as (polling, turn),
        ):
            listening = await first.listener._connect_to(SecretStr(url))
            try:
                isolation = await listening.fetchval("SHOW transaction_isolation")
            finally:
                await listening.close()
            subscriber = subscribe(first, user)
            async with turn.transaction():
                await turn.execute("LOCK TABLE fastapi_pg_sse.commit_order IN EXCLUSIVE MODE")
                await FEED.emit(polling, target_user_id=user, event_type="raced")

                async def both_wait() -> bool:
                    waiting = await turn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND application_name LIKE 'realtime-listener:%'"
                        " AND datname = current_database()"
                    )
                    return bool(waiting == 2)

                await wait_until(both_wait, "both listeners wait for the commit turn")
            frames = await read_frames(subscriber, 1)
            await FEED.emit(polling, target_user_id=user, event_type="after")
            frames += await read_frames(subscriber, 1)
            ids = await polling.fetchval(
                "SELECT array_agg(id ORDER BY id) FROM fastapi_pg_sse.events"
                " WHERE target_user_id = $1",
                user,
            )
            reconnects = first.listener.reconnects + second.listener.reconnects
    assert isolation == "read committed"
    assert frame_ids(frames) == ids and len(ids) == 2
    assert reconnects == 0
