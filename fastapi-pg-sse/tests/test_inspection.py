"""`python -m fastapi_pg_sse tail` prints a channel's events as they commit, in id order, never
skipping one whose transaction commits late, and stops cleanly on SIGTERM; `stats` counts each
channel's events and shows the events table's size and each process's open streams, read from
the name of its LISTEN connection. The README's examples run as its section shows them."""

import asyncio
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from fastapi_pg_sse import Channel, inspection
from fastapi_pg_sse.__main__ import main
from fastapi_pg_sse.listener import listener_name, parse_listener_name
from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.testing import (
    ServedApp,
    Server,
    ServerFactory,
    committed_event_ids,
    connected,
    emit_event,
    open_stream,
    serve,
    sign_token,
)
from tests.app import STREAM
from tests.helpers import (
    emit,
    new_channel,
    new_database,
    new_users,
    newest_id,
    serving,
    wait_until,
)
from tests.test_database_roles import database_with_roles

README = Path(__file__).resolve().parents[1] / "README.md"
UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"
"""Nothing listens on the discard port."""


class _Tail:
    """`inspection.tail` run as a task of the test's event loop, writing to buffers."""

    def __init__(self) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    async def printed(self, count: int) -> list[dict[str, Any]]:
        """The events printed, once there are `count`."""

        async def enough() -> bool:
            return len(self.events()) >= count

        await wait_until(enough, f"tail printed {count} event(s)")
        return self.events()


@asynccontextmanager
async def _tailing(database_url: str, channel: str, **options: Any) -> AsyncIterator[_Tail]:
    """`tail --json` of `channel` running until the block ends, then cancelled as SIGTERM
    does, which it answers with status 0; the block starts once it has started."""
    tail = _Tail()
    arguments = {"user": None, "after": None, "count": None, **options}
    task = asyncio.create_task(
        inspection.tail(
            database_url, channel, as_json=True, out=tail.out, err=tail.err, **arguments
        )
    )
    try:

        async def started() -> bool:
            return "Tailing" in tail.err.getvalue() or task.done()

        await wait_until(started, "tail started")
        assert not task.done(), tail.err.getvalue()
        yield tail
    finally:
        task.cancel()
    assert await task == 0


@pytest.mark.anyio
async def test_tail_prints_events_as_they_commit_in_id_order_with_one_that_commits_late(
    served_app: ServedApp,
) -> None:
    """The first transaction emits, then the second emits and commits, and tail prints it; then
    the first commits, with the larger id, and tail prints it too: reading on after the last id
    printed skips nothing. An event committed before tail started is not printed."""
    channel = new_channel()
    first_user, second_user = new_users("first", "second")
    before = await served_app.emit(channel, first_user, "before")
    async with (
        _tailing(served_app.database_url, channel.name) as tail,
        connected(served_app.database_url) as first,
        connected(served_app.database_url) as second,
    ):
        first_transaction, second_transaction = first.transaction(), second.transaction()
        await first_transaction.start()
        await second_transaction.start()
        await channel.emit(first, target_user_id=first_user, event_type="emitted_first")
        await channel.emit(second, target_user_id=second_user, event_type="emitted_second")
        first_xact = await first.fetchval("SELECT pg_current_xact_id()")
        await second_transaction.commit()
        [on_second_commit] = await tail.printed(1)
        await first_transaction.commit()
        printed = await tail.printed(2)
        after = await served_app.emit(channel, second_user, "after", {"n": 1})
        printed = await tail.printed(3)
        [first_id] = await committed_event_ids(first, first_xact)
    assert on_second_commit["type"] == "emitted_second"
    assert [(e["id"], e["type"], e["target_user_id"]) for e in printed] == [
        (on_second_commit["id"], "emitted_second", second_user),
        (first_id, "emitted_first", first_user),
        (after, "after", second_user),
    ]
    assert on_second_commit["id"] < first_id < after
    assert before < on_second_commit["id"]
    assert printed[2]["payload"] == {"n": 1}
    assert printed[2]["channel"] == channel.name


@pytest.mark.anyio
async def test_tail_connects_again_when_its_connection_is_lost_and_misses_nothing(
    served_app: ServedApp,
) -> None:
    """Its backend terminated (a failover, a network cut): what commits meanwhile and after is
    printed once it is back, after the last event it printed."""
    channel = new_channel()
    (user,) = new_users("failover")
    async with (
        _tailing(served_app.database_url, channel.name) as tail,
        connected(served_app.database_url) as admin,
    ):
        before = await served_app.emit(channel, user, "before")
        await tail.printed(1)
        terminated = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1",
            inspection.TAIL_APPLICATION_NAME,
        )
        meanwhile = await served_app.emit(channel, user, "meanwhile")
        printed = await tail.printed(2)
        after = await served_app.emit(channel, user, "after")
        printed = await tail.printed(3)
    assert terminated == 1
    assert [e["id"] for e in printed] == [before, meanwhile, after]
    lost, reconnected = tail.err.getvalue().splitlines()[-2:]
    assert lost.startswith(f"tail lost the database after event {before} (")
    assert reconnected == f"tail reconnected; reading on after event {before}"


@pytest.mark.anyio
async def test_tail_goes_on_after_a_burst_larger_than_a_page(
    served_app: ServedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inspection, "PAGE_SIZE", 3)
    channel = new_channel()
    (user,) = new_users("burst")
    async with _tailing(served_app.database_url, channel.name) as tail:
        async with connected(served_app.database_url) as connection, connection.transaction():
            for number in range(8):
                await channel.emit(connection, target_user_id=user, event_type=f"e{number}")
        printed = await tail.printed(8)
    assert [e["type"] for e in printed] == [f"e{number}" for number in range(8)]


def test_tail_of_one_user_prints_only_theirs_after_the_id_given_and_stops_after_count(
    served_app: ServedApp, capsys: pytest.CaptureFixture[str]
) -> None:
    channel = new_channel()
    alice, bob = new_users("alice", "bob")

    async def emitted() -> tuple[int, list[int]]:
        async with connected(served_app.database_url) as connection:
            start = await newest_id(connection)
            ids = [
                await emit(connection, channel, user, "stock_updated", {"stock": number})
                for number, user in enumerate([alice, bob, alice, alice])
            ]
        return start, ids

    start, ids = anyio.run(emitted)
    command = ["tail", channel.name, "--user", alice, "--after", str(start), "--count", "2"]
    assert main([*command, "--json", "--database-url", served_app.database_url]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["id"], e["target_user_id"], e["payload"]) for e in printed] == [
        (ids[0], alice, {"stock": 0}),
        (ids[2], alice, {"stock": 2}),
    ]
    assert main([*command, "--database-url", served_app.database_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [str(ids[0]), str(ids[2])]
    assert lines[0].endswith(f' stock_updated {alice} {{"stock": 0}}')


def test_tail_says_when_no_event_of_the_channel_is_stored(
    served_app: ServedApp, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in the name would otherwise wait in silence; a new channel may still be tailed."""
    command = ["tail", "no_such_channel_yet", "--after", "0", "--count", "1"]

    async def emit_once_listening() -> None:
        """Emit once the tail (run in this thread) looked for the channel, and so listens."""
        async with connected(served_app.database_url) as connection:

            async def listening() -> bool:
                return bool(
                    await connection.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                        " AND query NOT LIKE 'SELECT EXISTS%'",
                        inspection.TAIL_APPLICATION_NAME,
                    )
                )

            await wait_until(listening, "tail looked for the channel")
        await emit_event(served_app.database_url, Channel("no_such_channel_yet"), "nobody")

    with anyio.from_thread.start_blocking_portal() as portal:
        future = portal.start_task_soon(emit_once_listening)
        assert main([*command, "--database-url", served_app.database_url]) == 0
        future.result()
    err = capsys.readouterr().err
    assert "note: no event of no_such_channel_yet is stored (channels with events: " in err


def test_tail_whose_reader_goes_away_exits_0_without_a_word(served_app: ServedApp) -> None:
    """`tail ... | head -1`: once its reader has gone, the next event ends it, quietly."""
    channel = new_channel()
    (user,) = new_users("piped")
    first = anyio.run(emit_event, served_app.database_url, channel, user)
    command = ["tail", channel.name, "--after", str(first - 1)]
    with subprocess.Popen(
        [sys.executable, "-m", "fastapi_pg_sse", *command],
        env={**os.environ, "DATABASE_URL": served_app.database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().startswith(f"{first} ")
        process.stdout.close()
        anyio.run(emit_event, served_app.database_url, channel, user)
        assert process.wait(timeout=30) == 0
        assert (
            process.stderr.read()
            == f"Tailing {channel.name} after event {first - 1}; Ctrl-C stops.\n"
        )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["tail", "Bad-Name"], "'Bad-Name' is not a channel name"),
        (["tail", "feed", "--after", "-1"], "'-1' is not an event id"),
        (["tail", "feed", "--count", "0"], "'0' is not a positive number"),
    ],
)
def test_tail_refuses_bad_arguments_with_status_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*arguments, "--database-url", UNREACHABLE])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("command", [["tail", "feed"], ["stats"]])
def test_an_unreachable_database_is_status_2_with_one_line(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--database-url", UNREACHABLE]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the database:")
    assert err.count("\n") == 1


def test_a_database_without_the_schema_is_status_2_saying_what_to_apply(
    realtime_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def status() -> int:
        async with new_database(realtime_postgres_url, schema=False) as url:
            return await anyio.to_thread.run_sync(main, ["stats", "--database-url", url])

    assert anyio.run(status) == 2
    assert "the database has no fastapi-pg-sse schema: apply" in capsys.readouterr().err


@pytest.mark.anyio
async def test_the_apps_own_role_may_tail_and_stat_with_the_readmes_grants(
    realtime_postgres_url: str,
) -> None:
    """`streaming_role` of "Database roles" reads events, not `fastapi_pg_sse.triggers`."""
    async with database_with_roles(realtime_postgres_url) as (url, roles):
        async with connected(url) as owner:
            await owner.execute("INSERT INTO notes (owner) VALUES ('ola')")
        out, err = io.StringIO(), io.StringIO()
        status = await inspection.tail(
            roles["streaming_role"],
            "notes",
            user=None,
            after=0,
            count=1,
            as_json=True,
            out=out,
            err=err,
        )
        assert (status, err.getvalue()) == (0, "Tailing notes after event 0; Ctrl-C stops.\n")
        assert json.loads(out.getvalue())["type"] == "note_created"
        stats = await anyio.to_thread.run_sync(_stats, roles["streaming_role"])
        assert [(c["channel"], c["events"]) for c in stats["channels"]] == [("notes", 1)]
        async with connected(roles["streaming_role"]) as streaming:
            assert await inspection.is_known_channel(streaming, "notes")
            assert not await inspection.is_known_channel(streaming, "nothing")
        async with connected(url) as owner:
            await owner.execute("CREATE TABLE quiet (id int, owner text)")
            await owner.execute(
                "SELECT fastapi_pg_sse.create_trigger('quiet', 'quiet', 'owner', 'q')"
            )
            assert await inspection.is_known_channel(owner, "quiet")


def _stats(database_url: str) -> dict[str, Any]:
    """`stats --json`, run in-process."""
    out = io.StringIO()
    assert anyio.run(lambda: inspection.stats(database_url, as_json=True, out=out)) == 0
    stats: dict[str, Any] = json.loads(out.getvalue())
    return stats


def test_stats_counts_each_channels_events_with_the_oldest_and_newest_and_the_tables_size(
    realtime_postgres_url: str,
) -> None:
    async def scenario() -> tuple[list[int], list[int], int, dict[str, Any]]:
        async with (
            new_database(realtime_postgres_url) as url,
            connected(url) as connection,
        ):
            feed, news = Channel("feed"), Channel("news")
            feed_ids = [await emit(connection, feed, "u", "e") for _ in range(3)]
            news_ids = [await emit(connection, news, "u", "e", {"pad": "x" * 5000})]
            feed_ids.append(await emit(connection, feed, "v", "e"))
            size = await connection.fetchval(
                "SELECT pg_total_relation_size('fastapi_pg_sse.events')"
            )
            stats = await anyio.to_thread.run_sync(_stats, url)
            times = await connection.fetch(
                "SELECT id, created_at FROM fastapi_pg_sse.events ORDER BY id"
            )
        stamps = {row["id"]: row["created_at"].isoformat() for row in times}
        stats["stamps"] = stamps
        return feed_ids, news_ids, size, stats

    feed_ids, news_ids, size, stats = anyio.run(scenario)
    stamps = stats.pop("stamps")
    assert stats["channels"] == [
        {
            "channel": "feed",
            "events": 4,
            "oldest_id": feed_ids[0],
            "oldest_committed_at": stamps[feed_ids[0]],
            "newest_id": feed_ids[-1],
            "newest_committed_at": stamps[feed_ids[-1]],
        },
        {
            "channel": "news",
            "events": 1,
            "oldest_id": news_ids[0],
            "oldest_committed_at": stamps[news_ids[0]],
            "newest_id": news_ids[0],
            "newest_committed_at": stamps[news_ids[0]],
        },
    ]
    assert stats["events_table_bytes"] == size > 0
    assert stats["processes"] == []


def _open_streams(stats: dict[str, Any], pid: int) -> int | None:
    """The open streams `stats` shows of process `pid`; None if it shows no such process."""
    shown = [p["open_streams"] for p in stats["processes"] if p["pid"] == pid]
    return shown[0] if shown else None


async def _wait_for_open_streams(database_url: str, expected: dict[int, int]) -> None:
    """Wait until `stats` shows each process of `expected` (pid: open streams) with its count."""

    async def shown() -> bool:
        stats = await anyio.to_thread.run_sync(_stats, database_url)
        return all(_open_streams(stats, pid) == count for pid, count in expected.items())

    await wait_until(shown, f"stats shows the open streams {expected}")


@asynccontextmanager
async def _streams(server: Server, count: int) -> AsyncIterator[None]:
    """`count` streams of the server open, each of a user of its own, until the block ends."""
    async with AsyncExitStack() as stack:
        for user in new_users(*[f"reader{n}" for n in range(count)]):
            url = server.url + STREAM
            await stack.enter_async_context(open_stream(url, sign_token(user)))
        yield


@pytest.mark.anyio
async def test_stats_shows_each_process_with_its_open_streams_as_they_open_and_close(
    served_app: ServedApp, start_realtime_server: ServerFactory
) -> None:
    """Two served apps, two processes on the same database: each shows the streams it serves,
    renamed within a second or so of a change."""
    other = await anyio.to_thread.run_sync(start_realtime_server)
    pid, other_pid = served_app.server.process.pid, other.process.pid
    await _wait_for_open_streams(served_app.database_url, {pid: 0, other_pid: 0})
    async with _streams(served_app.server, 3), _streams(other, 1):
        await _wait_for_open_streams(served_app.database_url, {pid: 3, other_pid: 1})
        stats = await anyio.to_thread.run_sync(_stats, served_app.database_url)
    await _wait_for_open_streams(served_app.database_url, {pid: 0, other_pid: 0})
    [process] = [p for p in stats["processes"] if p["pid"] == pid]
    assert socket.gethostname().startswith(process["host"]) and process["host"]


@pytest.mark.anyio
async def test_stats_by_a_role_not_shown_when_listeners_connected_says_it_does_not_know(
    realtime_postgres_url: str, pytestconfig: pytest.Config
) -> None:
    """PostgreSQL hides `backend_start` in other roles' rows of `pg_stat_activity` from a role
    neither a member of theirs nor of `pg_read_all_stats`, as the app's `streaming_role` of
    "Database roles" is: its `stats` shows the serving process with `?` (JSON null) since."""
    async with database_with_roles(realtime_postgres_url) as (url, roles):
        environment = {"DATABASE_URL": url}
        async with (
            serving("tests.app:app", pytestconfig.rootpath, environment) as server,
            _streams(server, 1),
        ):
            pid = server.process.pid
            await _wait_for_open_streams(roles["streaming_role"], {pid: 1})
            stats = await anyio.to_thread.run_sync(_stats, roles["streaming_role"])
            out = io.StringIO()
            await inspection.stats(roles["streaming_role"], as_json=False, out=out)
    [process] = [p for p in stats["processes"] if p["pid"] == pid]
    assert (process["open_streams"], process["listening_since"]) == (1, None)
    [row] = [line for line in out.getvalue().splitlines() if f":{pid} " in line]
    assert row.split()[1:] == ["1", "?"]


def test_the_listener_name_keeps_the_pid_and_count_and_cuts_the_host_to_63_bytes() -> None:
    name = listener_name(123456)
    assert len(name.encode()) <= 63
    assert name.startswith(f"realtime-listener:{os.getpid()} streams=123456 host=")
    assert parse_listener_name(name) == (os.getpid(), 123456, name.partition(" host=")[2])
    assert parse_listener_name("realtime-listener:42") == (42, None, "")
    assert parse_listener_name("psql") is None


def _section() -> str:
    return (
        README.read_text(encoding="utf-8")
        .split("## Inspecting a channel", 1)[1]
        .split("\n## ", 1)[0]
    )


def _examples() -> list[tuple[list[str], str]]:
    """The section's examples: each command's arguments, and the output it shows."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", _section(), re.DOTALL):
        command, _, output = block.partition("\n")
        assert command.startswith("$ python -m fastapi_pg_sse "), command
        examples.append((command.split()[4:], output))
    return examples


def _normalized(text: str) -> str:
    """`text` without what differs from run to run: times, processes, sizes, column widths."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|\+00:00)", "<time>", text)
    text = re.sub(r"\S+:\d+( +\d+ +<time>)", r"<process>\1", text)
    text = re.sub(r"\d+ (bytes|kB|MB)", "<size>", text)
    return re.sub(r" +", " ", text)


@pytest.fixture
def readme_database(realtime_postgres_url: str) -> Iterator[str]:
    """A database of its own, so that ids are the README's, and a process serving it."""
    with anyio.from_thread.start_blocking_portal() as portal:
        manager = new_database(realtime_postgres_url)
        url = portal.call(manager.__aenter__)
        try:
            yield url
        finally:
            portal.call(manager.__aexit__, None, None, None)


def test_the_readmes_examples_print_what_it_shows(
    readme_database: str,
    pytestconfig: pytest.Config,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The section's first example, tail from now on, run as a command and stopped by SIGTERM;
    the others in-process: their output is the README's, times and sizes aside."""
    (tail, tail_shown), (tail_json, tail_json_shown), (stats, stats_shown) = _examples()
    stock = Channel("inventory_stock")
    monkeypatch.delenv("REALTIME_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", readme_database)
    environment = {"DATABASE_URL": readme_database, **TEST_ENVIRONMENT}
    with serve("tests.app:app", pytestconfig.rootpath, environment) as server:
        anyio.run(emit_event, readme_database, stock, "alice", "stock_updated", {"sku": "A1"})
        with subprocess.Popen(
            [sys.executable, "-m", "fastapi_pg_sse", *tail],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stderr is not None and process.stdout is not None
            started = process.stderr.readline()
            emitted: list[tuple[str, str, dict[str, object]]] = [
                ("bob", "stock_updated", {"sku": "B2", "stock": 0}),
                ("alice", "stock_removed", {"sku": "A1"}),
            ]
            for user, event_type, payload in emitted:
                anyio.run(partial(emit_event, readme_database, stock, user, event_type, payload))
            printed = [process.stdout.readline() for _ in range(2)]
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            assert process.stderr.read() == ""
        assert _normalized(started + "".join(printed)) == _normalized(tail_shown)

        assert main(tail_json) == 0
        assert _normalized(capsys.readouterr().out) == _normalized(tail_json_shown)

        async def stats_with_two_streams() -> None:
            async with _streams(server, 2):
                await _wait_for_open_streams(readme_database, {server.process.pid: 2})
                await anyio.to_thread.run_sync(main, stats)

        anyio.run(stats_with_two_streams)
    assert _normalized(capsys.readouterr().out) == _normalized(stats_shown)


@pytest.mark.anyio
async def test_tail_says_whom_each_event_is_for_a_user_a_group_or_everyone(
    realtime_database_url: str,
) -> None:
    channel = new_channel()
    (user, group) = new_users("tia", "team-tia")
    async with connected(realtime_database_url) as connection:
        after = await inspection.newest_id(connection)
        await connection.execute(
            "SELECT fastapi_pg_sse.emit($1, $2, 'mine', '{}'),"
            " fastapi_pg_sse.emit_to_group($1, $3, 'ours', '{}'),"
            " fastapi_pg_sse.broadcast($1, 'all', '{}')",
            channel.name,
            user,
            group,
        )
        events = await inspection.read_events(connection, channel.name, after=after)
    assert [event.audience for event in events] == [user, f"group:{group}", "everyone"]
    assert [json.loads(event.json_line())["target_group"] for event in events] == ["", group, ""]
